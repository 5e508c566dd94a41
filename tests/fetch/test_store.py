"""The structure store with local sources: CIF folders with a bad file, and read_store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pymatgen.core import Structure
from typer.testing import CliRunner

from miscreen import schema as S
from miscreen.atomic_io import read_json, read_table
from miscreen.cli.fetch import app
from miscreen.store.structures import read_store


def lgps() -> Structure:
    import pymatgen.util as pmg_util

    return Structure.from_file(Path(pmg_util.__file__).parent / "structures/Li10GeP2S12.json")


def test_cif_folder_with_a_bad_file_keeps_the_good_and_records_the_bad(tmp_path: Path) -> None:
    cifs = tmp_path / "cifs"
    cifs.mkdir()
    lgps().to(filename=str(cifs / "lgps.cif"))
    (cifs / "broken.cif").write_text("data_x\n_cell_length_a 5\nnot a cif at all\n")
    out = tmp_path / "store"
    result = CliRunner().invoke(app, ["local", "--path", str(cifs), "--out", str(out)])
    assert result.exit_code == 0, result.output
    df = read_store(out)
    assert list(df[S.ID]) == ["lgps"]
    assert df[S.FORMULA].item() == lgps().composition.reduced_formula
    stored = Structure.from_dict(json.loads(df[S.STRUCTURE].item()))
    assert not stored.is_ordered  # LGPS's partial occupancies survive the CIF round trip
    failures = read_table(out / "failures.parquet")
    assert list(failures[S.ID]) == ["broken"]
    assert "broken.cif" in failures["reason"].item()
    manifest = read_json(out / "manifest.json")
    assert manifest["counts"] == {**manifest["counts"], "records": 1, "failures": 1}
    # a second run finds the folder done and leaves the same store
    again = CliRunner().invoke(app, ["local", "--path", str(cifs), "--out", str(out)])
    assert again.exit_code == 0 and len(read_store(out)) == 1


def test_read_store_names_the_fix_for_missing_or_unfinished_stores(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="miscreen fetch mp\\|optimade\\|local"):
        read_store(tmp_path / "nowhere")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "checkpoint.json").write_text('{"version": 1, "sources": {}}')
    with pytest.raises(FileNotFoundError, match="re-run the same `miscreen fetch` command"):
        read_store(tmp_path / "half")


def test_invalid_filter_fails_before_any_request(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "optimade",
            "--base-url",
            "http://127.0.0.1:9",
            "--filter",
            "elements HAS Li",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 1
    assert "invalid OPTIMADE filter 'elements HAS Li'" in result.output
    assert not (tmp_path / "checkpoint.json").exists()
