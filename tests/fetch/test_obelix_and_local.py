"""Loading labelled data: OBELiX itself and a user's own CSVs, with failures reported."""

from __future__ import annotations

import gzip
import json
import math
import shutil

import pytest

from miscreen import schema as S
from miscreen.fetch.cif_files import load_cif_dir
from miscreen.fetch.csv_files import load_candidate_csv, load_labelled_csv
from miscreen.fetch.jsonl_files import load_jsonl
from miscreen.fetch.labels import apply_censoring, parse_sigma
from miscreen.fetch.pymatgen_examples import load_pymatgen_examples

from .conftest import SHARED


def test_obelix_all_rows_structures_and_censoring(obelix_all):
    records, failures = obelix_all
    assert len(records) == 599 and failures.empty
    assert records[S.STRUCTURE].notna().sum() == 321
    assert records[S.CENSORED].sum() == 37
    assert (records.loc[records[S.CENSORED], S.TARGET] == -15).all()
    assert records[S.FAMILY].eq("LGPS").sum() == 36


def test_cif_composition_differing_from_the_table_is_named():
    from pymatgen.core import Composition

    from miscreen.fetch.parsing import composition_mismatch

    assert composition_mismatch(Composition("Li10GeP2S12"), Composition("Li20Ge2P4S24")) == ""
    off = composition_mismatch(Composition("Li2SiS3"), Composition("SiS2"))
    assert off.startswith("Li 0.333 vs 0.000") and "S 0.500 vs 0.667" in off


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1E-3", (-3.0, False)), ("<1E-10", (-15.0, True)), ("0.012", (math.log10(0.012), False))],
)
def test_parse_sigma(raw, expected):
    value, censored, _ = parse_sigma(raw)
    assert value == pytest.approx(expected[0]) and censored is expected[1]


@pytest.mark.parametrize("raw", ["-1", "0", "abc", ""])
def test_parse_sigma_rejects_nonsense(raw):
    with pytest.raises(ValueError):
        parse_sigma(raw)


def test_censoring_policies(obelix_all):
    records, _ = obelix_all
    assert len(apply_censoring(records, "floor")) == 599
    assert len(apply_censoring(records, "drop")) == 599 - 37
    bound = apply_censoring(records, "bound")
    assert set(bound.loc[bound[S.CENSORED], S.TARGET].round(6)) == {-10.0, -8.0}


def test_labelled_csv_keeps_good_rows_and_reports_bad(tmp_path):
    import tarfile

    good_cif = tmp_path / "good.cif"
    with tarfile.open(SHARED / "obelix" / "all_cifs.tar.gz") as tar:
        member = tar.getmember("all_randomized_cifs/jqc.cif")
        good_cif.write_bytes(tar.extractfile(member).read())
    (tmp_path / "broken.cif").write_text("data_x\n_cell_length_a 3\nthis is not a CIF\n")
    csv = tmp_path / "mine.csv"
    csv.write_text(
        "id,composition,structure,sigma\n"
        "a,Li7La3Zr2O12,,1e-4\n"
        "b,Li3(Mo8S8O8(OH)8(HWO5(H2O)))*(H2O)18,,1e-6\n"
        "c,Li7BiO6,good.cif,1.6e-6\n"
        "d,Li2O,missing.cif,1e-9\n"
        "e,Li2S,broken.cif,1e-9\n"
        "f,Li3PS4,,<1E-10\n"
    )
    records, failures = load_labelled_csv(csv, target="sigma")
    assert list(records[S.ID]) == ["a", "c", "f"]
    assert records.loc[records[S.ID] == "c", S.STRUCTURE].notna().all()
    assert records.loc[records[S.ID] == "f", S.CENSORED].item()
    reasons = dict(zip(failures[S.ID], failures["reason"], strict=True))
    assert set(reasons) == {"b", "d", "e"}
    assert "mine.csv line 3" in reasons["b"] and "unparsable composition" in reasons["b"]
    assert "missing.cif does not exist" in reasons["d"]
    assert "unreadable CIF" in reasons["e"]


def test_labelled_csv_missing_target_column_is_clear(tmp_path):
    csv = tmp_path / "x.csv"
    csv.write_text("composition,sigma\nLi2O,1e-9\n")
    with pytest.raises(ValueError, match=r"target column 'log10_sigma' not found.*--target"):
        load_labelled_csv(csv)


def test_candidate_csv_and_cif_dir(tmp_path):
    shutil.copy(
        SHARED.parent / "fixtures" / "optimade" / "mcloud-optimade-sample.json",
        tmp_path / "not-a-cif.json",
    )
    (tmp_path / "bad.cif").write_text("garbage")
    records, failures = load_cif_dir(tmp_path)
    assert records.empty and list(failures[S.ID]) == ["bad"]
    csv = tmp_path / "c.csv"
    csv.write_text("composition\nLi2O\nXx2Q\n")
    records, failures = load_candidate_csv(csv)
    assert list(records[S.FORMULA]) == ["Li2O"] and len(failures) == 1


def test_jsonl_snapshot_li_filter():
    records, failures = load_jsonl(
        SHARED / "mp-2018" / "mp_2018_matminer.jsonl.gz", require_elements=("Li",)
    )
    assert len(records) == 443 and failures.empty
    assert records[S.ID].str.startswith("mp-").all()
    assert records[S.COMPOSITION].str.contains(r"\bLi\d", regex=True).all()


def test_jsonl_element_filter_comes_before_the_structure_is_built(tmp_path):
    """A row without the required elements is left out from what its sites list, so its
    structure is never built: not even a broken one becomes a failure. A row with them is
    built and checked as before; an object whose sites cannot be read simply is decided by
    the full parse."""
    good = json.loads(gzip.open(SHARED / "mp-2018" / "mp_2018_matminer.jsonl.gz", "rt").readline())[
        "structure"
    ]
    broken_li = {**good, "lattice": {"matrix": [[0, 0, 0], [0, 0, 0], [0, 0, 0]]}}
    broken_li["sites"] = [{**s, "species": [{"element": "Li", "occu": 1}]} for s in good["sites"]]
    broken_na = {
        **broken_li,
        "sites": [{**s, "species": [{"element": "Na", "occu": 1}]} for s in broken_li["sites"]],
    }
    lines = [
        {"material_id": "na-broken", "structure": broken_na},
        {"material_id": "li-broken", "structure": broken_li},
        {"material_id": "odd", "structure": {"sites": "not a list"}},
    ]
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(json.dumps(o) for o in lines) + "\n")
    records, failures = load_jsonl(path, require_elements=("Li",))
    assert records.empty
    assert sorted(failures[S.ID]) == ["li-broken", "odd"]


def test_pymatgen_examples_roundtrip():
    from pymatgen.core import Structure

    records, failures = load_pymatgen_examples()
    assert failures.empty and len(records) == 4
    lgps = records.set_index(S.ID).loc["pymatgen:Li10GeP2S12"]
    assert lgps[S.SPACEGROUP] == 137
    s = Structure.from_dict(json.loads(lgps[S.STRUCTURE]))
    assert not s.is_ordered  # disorder is kept
