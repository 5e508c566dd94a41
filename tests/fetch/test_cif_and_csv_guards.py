"""CIF and CSV guards of issue 27 (points 3, 4, 5, 8 and the reader parts of 15): the
symmetry guard counts every key pymatgen reads, occupancies outside (0, 1] are refused,
a composition that disagrees with its CIF is refused unless the CIF is trusted, CIF paths
stay inside the CSV's folder, and files that are not UTF-8, truncated CIFs and noble gases
get a reason instead of garbage, a raw exception or a raw warning."""

from __future__ import annotations

import os
import re
import time
import warnings
from pathlib import Path

import pytest
from pymatgen.core import Element, Lattice, Structure
from pymatgen.io.cif import CifParser, CifWriter

from miscreen import schema as S
from miscreen.fetch.cif_files import read_cif, structure_from_cif_text
from miscreen.fetch.csv_files import csv_rows, load_candidate_csv, load_labelled_csv
from miscreen.fetch.jsonl_files import load_jsonl
from miscreen.fetch.local import read_input_rows
from miscreen.fetch.parsing import MAX_CIF_EXPANSION
from miscreen.fetch.records import InputError, composition_record, structure_record


def cif_text(key: str = "_symmetry_equiv_pos_as_xyz", ops: int = 1, occupancies=("1",)) -> str:
    """A P1-like CIF: ``ops`` translations under ``key`` and one Li row per occupancy,
    with La and O rows besides."""
    symops = "\n".join(f" 'x+{k}/{ops},y,z'" for k in range(ops))
    rows = [f" Li{i} Li {0.1 + i / 5:.4f} 0.1 0.1 {occ}" for i, occ in enumerate(occupancies)]
    rows += [" La1 La 0.5 0.5 0.5 1", " O1 O 0.5 0.0 0.0 1"]
    return (
        "data_x\n_cell_length_a 5\n_cell_length_b 5\n_cell_length_c 5\n_cell_angle_alpha 90\n"
        f"_cell_angle_beta 90\n_cell_angle_gamma 90\nloop_\n {key}\n{symops}\nloop_\n"
        " _atom_site_label\n _atom_site_type_symbol\n _atom_site_fract_x\n"
        " _atom_site_fract_y\n _atom_site_fract_z\n _atom_site_occupancy\n" + "\n".join(rows) + "\n"
    )


def li2o() -> Structure:
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(4.61), ["Li", "O"], [[0.25] * 3, [0] * 3]
    )


# -- point 3: every symmetry key pymatgen reads is counted -------------------------------
PYMATGEN_SYMOP_KEYS = (
    "_symmetry_equiv_pos_as_xyz",
    "_symmetry_equiv_pos_as_xyz_",
    "_space_group_symop_operation_xyz",
    "_space_group_symop_operation_xyz_",
)


@pytest.mark.parametrize("key", PYMATGEN_SYMOP_KEYS)
def test_pymatgen_reads_every_key_the_guard_counts(key: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parser = CifParser.from_str(cif_text(key, ops=7))
        block = next(iter(parser._cif.data.values()))
        assert len(parser.get_symops(block)) == 7  # so the key is one pymatgen expands by


@pytest.mark.parametrize(
    "key", [*PYMATGEN_SYMOP_KEYS, "_space_group_symop.operation_xyz", "_symmetry_equiv.pos_as_xyz"]
)
def test_the_symmetry_guard_counts_every_spelling(key: str) -> None:
    """60 atom rows x 400 operations under ``_symmetry_equiv_pos_as_xyz_`` took 21 s."""
    ops = MAX_CIF_EXPANSION // 3 + 1  # 3 atom rows
    start = time.perf_counter()
    with pytest.raises(ValueError, match="CIF expands to about"):
        structure_from_cif_text(cif_text(key, ops=ops))
    assert time.perf_counter() - start < 5


# -- point 4: occupancies outside (0, 1] --------------------------------------------------
@pytest.mark.parametrize("occupancy", ["-0.5", "0", "0.0(1)", "1.5", "nan"])
def test_an_occupancy_outside_zero_one_is_a_reason(occupancy: str, tmp_path: Path) -> None:
    """A Li site of occupancy -0.5 or 0 was dropped silently: the row became LaO."""
    (tmp_path / "x.cif").write_text(cif_text(occupancies=(occupancy,)))
    with pytest.raises(ValueError, match=f"atom site Li0 has occupancy {re.escape(occupancy)}"):
        read_cif(tmp_path / "x.cif")


def test_sane_occupancies_still_load(tmp_path: Path) -> None:
    (tmp_path / "x.cif").write_text(cif_text(occupancies=("0.5", "1.0(2)", "?")))
    assert read_cif(tmp_path / "x.cif").composition.reduced_formula.startswith("Li")


# -- point 5: a composition that disagrees with its CIF ------------------------------------
def test_a_composition_disagreeing_with_its_cif_is_refused_unless_trusted(tmp_path: Path) -> None:
    CifWriter(li2o()).write_file(tmp_path / "li2o.cif")
    csv = tmp_path / "m.csv"
    csv.write_text(
        "id,composition,structure,sigma\n"
        "wrong,Li3PO4,li2o.cif,1e-4\n"
        "same,Li2O,li2o.cif,1e-4\n"
        "scaled,Li4O2,li2o.cif,1e-4\n"
        "bare,,li2o.cif,1e-4\n"
        "junk,Xx2,li2o.cif,1e-4\n"
    )
    records, failures = load_labelled_csv(csv, target="sigma")
    assert list(records[S.ID]) == ["same", "scaled", "bare"]
    assert set(records[S.FORMULA]) == {"Li2O"}
    reasons = dict(zip(failures[S.ID], failures["reason"], strict=True))
    assert (
        "m.csv line 2: composition Li3PO4 disagrees with its CIF li2o.cif (Li2O" in reasons["wrong"]
    )
    assert "trust the CIF" in reasons["wrong"]
    assert "m.csv line 6" in reasons["junk"] and "beside CIF li2o.cif" in reasons["junk"]
    trusted, failures = load_labelled_csv(csv, target="sigma", trust_cif=True)
    assert failures.empty and set(trusted[S.FORMULA]) == {"Li2O"} and len(trusted) == 5
    _, rows = read_input_rows(csv, trust_cif=True)
    assert all(r.record is not None for r in rows)


# -- point 8 of the table: CIF paths stay inside the CSV's folder --------------------------
def test_cif_paths_resolve_inside_the_csv_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    CifWriter(li2o()).write_file(data / "inside.cif")
    CifWriter(li2o()).write_file(tmp_path / "secret.cif")
    (data / "link.cif").symlink_to(tmp_path / "secret.cif")
    (data / "ok_link.cif").symlink_to(data / "inside.cif")
    os.mkfifo(data / "pipe.cif")
    names = {
        "parent": "../secret.cif",
        "absolute": str(tmp_path / "secret.cif"),
        "symlink": "link.cif",
        "environ": "/proc/self/environ",
        "passwd": "../../../../../../etc/passwd",
        "folder": "sub",
        "pipe": "pipe.cif",
        "missing": "missing.cif",
        "inside": "inside.cif",
        "inside_link": "ok_link.cif",
    }
    csv = data / "c.csv"
    csv.write_text("id,structure\n" + "".join(f"{k},{v}\n" for k, v in names.items()))
    records, failures = load_candidate_csv(csv)
    assert sorted(records[S.ID]) == ["inside", "inside_link"]
    reasons = dict(zip(failures[S.ID], failures["reason"], strict=True))
    for rid in ("parent", "absolute", "symlink", "environ", "passwd"):
        assert "is outside the CSV's folder" in reasons[rid], reasons[rid]
    assert "is a folder, not a CIF file" in reasons["folder"]
    assert "is not a regular file (a device, pipe or socket)" in reasons["pipe"]
    assert "missing.cif does not exist" in reasons["missing"]
    allowed, failures = load_candidate_csv(csv, allow_outside=True)
    assert sorted(allowed[S.ID]) == ["absolute", "inside", "inside_link", "parent", "symlink"]
    reasons = dict(zip(failures[S.ID], failures["reason"], strict=True))
    assert "outside" not in " ".join(reasons.values())
    assert "unreadable CIF" in reasons["passwd"]
    device = data / "d.csv"
    device.write_text("id,structure\nnull,/dev/null\n")
    _, rows = csv_rows(device, "t", allow_outside=True)
    assert "is not a regular file" in rows[0].reason
    _, rows = read_input_rows(device)
    assert "is outside the CSV's folder" in rows[0].reason


# -- point 15, the readers: encodings, truncated CIFs, noble gases --------------------------
def test_a_utf16_file_is_named_as_not_utf8(tmp_path: Path) -> None:
    for name in ("cands.csv", "cands.jsonl"):
        body = "composition\nLi2O\n" if name.endswith("csv") else '{"composition": "Li2O"}\n'
        (tmp_path / name).write_text(body, encoding="utf-16")
    with pytest.raises(InputError, match=r"cands\.csv is not UTF-8 text \(it looks like UTF-16"):
        load_candidate_csv(tmp_path / "cands.csv")
    with pytest.raises(InputError, match=r"cands\.jsonl is not UTF-8 text"):
        load_jsonl(tmp_path / "cands.jsonl")
    (tmp_path / "latin.csv").write_bytes(
        "composition,note\nLi2O,ok\nLi2S,caf\xe9\n".encode("latin-1")
    )
    with pytest.raises(InputError, match=r"latin\.csv is not UTF-8 text \(line 3"):
        load_candidate_csv(tmp_path / "latin.csv")
    (tmp_path / "x.cif").write_text(str(CifWriter(li2o())), encoding="utf-16")
    with pytest.raises(ValueError, match=r"x\.cif is not UTF-8 text"):
        read_cif(tmp_path / "x.cif")


def test_a_cif_cut_inside_a_loop_header_gets_a_reason(tmp_path: Path) -> None:
    text = str(CifWriter(li2o()))
    cut = text[: text.index("loop_") + len("loop_\n _s")]
    (tmp_path / "cut.cif").write_text(cut)
    with pytest.raises(ValueError, match="truncated or damaged CIF") as info:
        read_cif(tmp_path / "cut.cif")
    assert "ZeroDivisionError" not in str(info.value)


def test_noble_gas_formulas_print_no_raw_warning() -> None:
    for symbol in ("He", "Ne", "Ar"):
        Element(symbol).__dict__.pop("X", None)  # pymatgen warns once, then caches
    s = Structure(Lattice.cubic(4.0), ["Li", "Ne"], [[0, 0, 0], [0.5] * 3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert composition_record("Li2Ar", "a", "t", {})[S.FORMULA] == "Li2Ar"
        assert composition_record("HeNe", "b", "t", {})[S.FORMULA] in ("HeNe", "NeHe")
        assert structure_record("c", "t", s)[S.FORMULA] in ("LiNe", "NeLi")


def test_a_configured_csv_source_takes_allow_outside_and_trust_cif(tmp_path: Path) -> None:
    from miscreen.config import CsvSource
    from miscreen.fetch.sources import load_source

    data = tmp_path / "data"
    data.mkdir()
    CifWriter(li2o()).write_file(tmp_path / "shared.cif")
    csv = data / "c.csv"
    csv.write_text("id,composition,structure\nout,Li2O,../shared.cif\nwrong,Li3PO4,../shared.cif\n")
    default = load_source(CsvSource(path=csv))
    assert default.records.empty and len(default.failures) == 2
    allowed = load_source(CsvSource(path=csv, allow_outside=True))
    assert list(allowed.records[S.ID]) == ["out"]
    assert "Li3PO4" in allowed.failures["reason"].iloc[0]
    trusted = load_source(CsvSource(path=csv, allow_outside=True, trust_cif=True))
    assert sorted(trusted.records[S.ID]) == ["out", "wrong"]


def test_labelled_csvs_take_allow_outside_and_trust_cif_from_the_config(tmp_path: Path) -> None:
    """`data.train`/`data.extra` CSVs (and `train --data`) read CIFs under `data`'s
    settings: outside the CSV's folder only when allowed."""
    from miscreen.config import Config, DataConfig
    from miscreen.fetch.sources import load_labelled

    data = tmp_path / "data"
    data.mkdir()
    CifWriter(li2o()).write_file(tmp_path / "shared.cif")
    csv = data / "l.csv"
    csv.write_text("id,composition,structure,log10_sigma\nout,Li2O,../shared.cif,-8\n")

    def loaded(**kw: bool):
        cfg = Config(data=DataConfig(train=csv, test_split=None, **kw))
        return load_labelled(cfg, cfg.data.train_split)

    refused = loaded()
    assert refused.records.empty and "outside the CSV's folder" in refused.failures["reason"][0]
    assert list(loaded(allow_outside=True).records[S.ID]) == ["out"]
