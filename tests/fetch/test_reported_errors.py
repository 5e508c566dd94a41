"""Errors the fetch and store stages used to swallow are now reported: a warning naming the
input (id, file) and the error, or a clear ImportError saying what to install."""

from __future__ import annotations

import logging
import math
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest
from pymatgen.core import Structure
from pymatgen.util import __file__ as pmg_util_file

from miscreen import schema as S
from miscreen.fetch import mp
from miscreen.fetch.cif_files import load_cif_dir
from miscreen.fetch.records import structure_record
from miscreen.store.structures import DUPLICATE_OF, flag_cross_source_duplicates
from tests.conftest import SHARED


def test_an_unreadable_material_id_is_kept_with_a_warning(caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.WARNING, logger="miscreen.fetch.mp"):
        assert mp.normalize_id("mp-aaaaaaff") == "mp-135"
        assert not caplog.records
        assert mp.normalize_id("mp-149-GGA") == "mp-149-GGA"
    assert len(caplog.records) == 1
    assert "'mp-149-GGA'" in caplog.text and "uppercase" in caplog.text


def test_a_doc_without_an_id_is_a_failure_without_an_id_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="miscreen.fetch.mp"):
        records, failures = mp.docs_to_frames([{"structure": None}], "mp:test", "v1", "page 1")
    assert records.empty
    assert list(failures[S.ID]) == ["doc0"]
    assert "missing lattice" in failures["reason"].item()
    assert not caplog.records  # "doc0" is our placeholder, not an id the server sent


def test_missing_emmet_core_is_an_import_error_naming_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "emmet.core.mpid", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install emmet-core"):
        mp.normalize_id("mp-1234")


def test_a_cif_without_a_findable_space_group_loads_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """OBELiX's my9 (a disordered NASICON) defeats spglib at symprec 0.1."""
    with tarfile.open(SHARED / "obelix" / "all_cifs.tar.gz") as tar:
        member = tar.extractfile("all_randomized_cifs/my9.cif")
        assert member is not None
        (tmp_path / "my9.cif").write_bytes(member.read())
    with caplog.at_level(logging.WARNING, logger="miscreen.fetch.records"):
        records, failures = load_cif_dir(tmp_path, source="obelix-cifs")
    assert failures.empty and list(records[S.ID]) == ["my9"]
    assert math.isnan(records[S.SPACEGROUP].item())
    assert "obelix-cifs my9: space group left unknown" in caplog.text
    assert "SymmetryUndeterminedError" in caplog.text


def test_an_unreadable_stored_structure_is_named_when_matching_duplicates(
    caplog: pytest.LogCaptureFixture,
) -> None:
    li2o = Structure.from_file(Path(pmg_util_file).parent / "structures" / "Li2O.json")
    rows = [
        structure_record("a-1", "source-a", li2o),
        structure_record("b-1", "source-b", li2o),
        {**structure_record("b-2", "source-b", li2o), S.STRUCTURE: '{"lattice": {"matrix"'},
    ]
    with caplog.at_level(logging.WARNING, logger="miscreen.store.structures"):
        out = flag_cross_source_duplicates(pd.DataFrame(rows)).set_index(S.ID)
    assert out.loc["b-1", DUPLICATE_OF] == "a-1"  # the readable ones are still matched
    assert pd.isna(out.loc["b-2", DUPLICATE_OF])
    assert len(caplog.records) == 1
    assert "record b-2 (source-b): structure unreadable (JSONDecodeError" in caplog.text
