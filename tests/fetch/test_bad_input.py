"""Bad input rows (issue 16): each becomes a failure naming file, line and reason, the good
rows always load, nothing absurd is silently read as something else, ids never collide."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter

from miscreen import schema as S
from miscreen.featurize import featurize_records
from miscreen.fetch.cif_files import load_cif_dir
from miscreen.fetch.csv_files import load_candidate_csv, load_labelled_csv
from miscreen.fetch.jsonl_files import iter_jsonl, load_jsonl
from miscreen.fetch.labels import parse_sigma
from miscreen.fetch.parsing import parse_composition
from miscreen.fetch.records import structure_record


def _li2o() -> Structure:
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(4.61), ["Li", "O"], [[0.25] * 3, [0] * 3]
    )


def _reasons(failures: pd.DataFrame) -> dict[str, str]:
    return dict(zip(failures[S.ID], failures["reason"], strict=True))


# -- compositions ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("formula", "why"),
    [
        ("NaN", "missing-value marker"),  # pymatgen reads it as sodium nitride
        ("nan", "missing-value marker"),
        ("None", "missing-value marker"),
        ("Li0O", "Li is written but has amount 0"),  # pymatgen reads it as O
        ("Li1e-300O", "Li is written but has amount 0"),
        ("Li1e308O", "amount outside"),
        ("Li1e309O", "not a finite number"),  # used to be an OverflowError
        ("LiO2-", "unparsable"),
        ("Li" * 150, "characters long"),
        ("", "empty"),
    ],
)
def test_compositions_read_as_something_else_are_rejected(formula: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_composition(formula)


@pytest.mark.parametrize(
    "formula", ["Li2O", "Li7La3Zr2O12", " Li6PS5Cl ", "Li0.33La0.56TiO3", "Na", "D2O"]
)
def test_real_compositions_still_parse(formula: str) -> None:
    assert parse_composition(formula).num_atoms > 0


# -- labels ------------------------------------------------------------------------------
@pytest.mark.parametrize("raw", ["nan", "inf", "1e400", "1e308", "2e3", "<1e5", "1e-40"])
def test_conductivities_outside_the_physical_range_are_rejected(raw: str) -> None:
    with pytest.raises(ValueError, match="S/cm"):
        parse_sigma(raw)


def test_one_bad_row_never_costs_the_good_rows(tmp_path: Path) -> None:
    csv = tmp_path / "m.csv"
    csv.write_text(
        "id,composition,sigma\n"
        "good1,Li2O,1e-4\n"
        "big,Li1e308O,1e-4\n"
        "over,Li1e309O,1e-4\n"
        "nan,Li3PS4,nan\n"
        "inf,Li3PS4,inf\n"
        "huge,Li3PS4,1e400\n"
        "typo,Li3PS4,1e308\n"
        "sodium,NaN,1e-3\n"
        "oxygen,Li0O,1e-3\n"
        "good2,Li7P3S11,1e-3\n"
        "wide,Li2S,1e-5,extra\n"
    )
    records, failures = load_labelled_csv(csv, target="sigma")
    assert list(records[S.ID]) == ["good1", "good2"]
    reasons = _reasons(failures)
    assert set(reasons) == {"big", "over", "nan", "inf", "huge", "typo", "sodium", "oxygen", "wide"}
    for rid, line in (("big", 3), ("over", 4), ("nan", 5), ("typo", 8), ("wide", 12)):
        assert f"m.csv line {line}:" in reasons[rid], reasons[rid]
    assert "physical range" in reasons["typo"]
    assert "fields but the header has 3" in reasons["wide"]


def test_log10_labels_must_be_finite_and_physical(tmp_path: Path) -> None:
    csv = tmp_path / "l.csv"
    csv.write_text("composition,log10_sigma\nLi2O,-4\nLi2S,nan\nLi3N,inf\nLiCl,308\nLiBr,-3\n")
    records, failures = load_labelled_csv(csv)
    assert list(records[S.TARGET]) == [-4.0, -3.0]
    assert len(failures) == 3 and failures["reason"].str.contains(r"l\.csv line [345]").all()


def test_an_empty_csv_is_a_clear_error(tmp_path: Path) -> None:
    from miscreen.fetch.records import InputError

    (tmp_path / "e.csv").write_text("")
    with pytest.raises(InputError, match=r"e\.csv is empty"):
        load_candidate_csv(tmp_path / "e.csv")
    (tmp_path / "h.csv").write_text("composition\n")  # a header alone: no rows, no error
    records, failures = load_candidate_csv(tmp_path / "h.csv")
    assert records.empty and failures.empty


# -- duplicate ids -----------------------------------------------------------------------
def test_repeated_ids_are_made_unique_by_line(tmp_path: Path) -> None:
    csv = tmp_path / "d.csv"
    csv.write_text("id,composition,log10_sigma\nx,Li2O,-4\ny,Li2S,-5\nx,Li3N,-3\n")
    records, _ = load_labelled_csv(csv)
    assert list(records[S.ID]) == ["x", "y", "x#line4"]
    assert records[S.ID].is_unique


def test_repeated_cif_stems_in_subfolders_stay_apart(tmp_path: Path) -> None:
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        CifWriter(_li2o()).write_file(tmp_path / sub / "same.cif")
    records, failures = load_cif_dir(tmp_path)
    assert failures.empty and sorted(records[S.ID]) == ["same", "same#b/same.cif"]


# -- JSONL -------------------------------------------------------------------------------
def test_bad_jsonl_lines_are_failures_with_their_line(tmp_path: Path) -> None:
    good = {"material_id": "m-1", "structure": _li2o().as_dict()}
    path = tmp_path / "s.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps(good),
                "{not json",
                "[1, 2, 3]",
                json.dumps({"material_id": "m-2", "structure": "Li2O"}),
                json.dumps({**good, "material_id": "m-1"}),  # the id again
                "null",
            ]
        )
        + "\n"
    )
    records, failures = load_jsonl(path)
    assert list(records[S.ID]) == ["m-1", "m-1#line5"]
    reasons = list(failures["reason"])
    assert len(reasons) == 4
    assert "s.jsonl line 2: not valid JSON" in reasons[0]
    assert "s.jsonl line 3: a JSON list, expected an object" in reasons[1]
    assert "s.jsonl line 4" in reasons[2] and "'structure' is a str" in reasons[2]
    assert "s.jsonl line 6" in reasons[3]
    with pytest.raises(ValueError, match=r"s\.jsonl line 2"):
        list(iter_jsonl(path))  # the strict reader names the line too


def test_a_truncated_gzip_keeps_the_lines_before_the_damage(tmp_path: Path) -> None:
    import gzip

    lines = [json.dumps({"material_id": f"m-{i}", "composition": "Li2O"}) for i in range(400)]
    whole = gzip.compress(("\n".join(lines) + "\n").encode())
    path = tmp_path / "t.jsonl.gz"
    path.write_bytes(whole[: len(whole) // 2])
    records, failures = load_jsonl(path)
    assert 0 < len(records) < 400 and len(failures) == 1
    assert "file damaged, reading stopped here" in failures["reason"].item()


# -- structures --------------------------------------------------------------------------
def test_two_atoms_on_one_position_are_refused(tmp_path: Path) -> None:
    from miscreen.fetch.parsing import check_structure

    s = Structure(Lattice.cubic(4.0), ["Li", "Li", "O"], [[0, 0, 0], [0.01, 0, 0], [0.5] * 3])
    with pytest.raises(ValueError, match=r"overlaps site 1.*combined occupancy of 2"):
        check_structure(s)
    half = Structure(
        Lattice.cubic(4.0), [{"Li": 0.5}, {"Li": 0.5}, "O"], [[0, 0, 0], [0.02, 0, 0], [0.5] * 3]
    )
    check_structure(half)  # split sites sharing one position are normal disorder
    (tmp_path / "x.cif").write_text(CifWriter(s).__str__())
    records, failures = load_cif_dir(tmp_path)
    assert records.empty and "overlaps" in failures["reason"].item()
    (tmp_path / "x.jsonl").write_text(json.dumps({"material_id": "x", "structure": s.as_dict()}))
    records, failures = load_jsonl(tmp_path / "x.jsonl")
    assert records.empty and "overlaps" in failures["reason"].item()


def test_absurd_cells_are_refused_with_a_reason(tmp_path: Path) -> None:
    from miscreen.fetch.parsing import check_cell

    huge = Structure(Lattice.cubic(1e6), ["Li", "O"], [[0, 0, 0], [0.5] * 3])
    flat = Structure(Lattice.orthorhombic(1e4, 1e4, 3), ["Li"] * 4, np.eye(4, 3) * 0.3)
    many = _li2o() * (6, 6, 6)  # 2,592 sites
    for name, s, why in (
        ("huge", huge, "per site, outside"),
        ("flat", flat, "per site, outside"),
        ("many", many, "sites"),
    ):
        with pytest.raises(ValueError, match=why):
            check_cell(s)
        (tmp_path / f"{name}.cif").write_text(CifWriter(s).__str__())
    records, failures = load_cif_dir(tmp_path)
    assert records.empty
    assert set(failures[S.ID]) == {"huge", "flat", "many"}
    assert failures["reason"].str.contains("impossible structure").all()


def test_featurization_refuses_an_absurd_cell_before_building_it() -> None:
    """A 4-atom cell with a = b = 10^4 A used to take 0.9 GB in the neighbour search."""
    flat = Structure(Lattice.orthorhombic(1e4, 1e4, 5), ["Li", "Li", "O", "O"], np.eye(4, 3) * 0.3)
    rows = pd.DataFrame([structure_record("flat", "t", flat), structure_record("ok", "t", _li2o())])
    feats, fails, _ = featurize_records(rows, "structure")
    assert list(feats.index) == ["ok"]
    assert "per site, outside" in fails.set_index(S.ID).loc["flat", "reason"]


# -- formats -----------------------------------------------------------------------------
def test_input_format_is_chosen_case_insensitively(tmp_path: Path) -> None:
    from miscreen.fetch.local import input_kind, read_input_rows
    from miscreen.fetch.records import InputError

    path = tmp_path / "CANDS.CSV"
    path.write_text("composition\nLi2O\n")
    assert input_kind(path) == "csv"
    columns, rows = read_input_rows(path)
    assert columns == ["composition"] and rows[0].record is not None
    assert input_kind(Path("x.JSONL.GZ")) == "jsonl"
    with pytest.raises(InputError, match="unknown input format"):
        input_kind(Path("x.txt"))


# -- Materials Project endpoint answering odd JSON ---------------------------------------
@pytest.fixture
def odd_mp() -> Iterator[tuple[str, dict[str, str]]]:
    """A server that answers the MP heartbeat correctly and the summary with ``bodies``."""
    bodies = {"summary": "{}"}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.startswith("/heartbeat"):
                body = json.dumps(
                    {
                        "db_version": "2025.09.25",
                        "version": "0.87.3",
                        "access_controlled_batch_ids": [],
                    }
                )
            else:
                body = bodies["summary"]
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/", bodies
    srv.shutdown()
    srv.server_close()


@pytest.mark.parametrize("body", ['{"foo": 1}', "[1, 2]", '{"data": 5}', '{"data": [1, 2]}'])
def test_an_mp_endpoint_answering_odd_json_is_a_clear_error(
    odd_mp: tuple[str, dict[str, str]], body: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from miscreen.fetch.http import RetryPolicy
    from miscreen.fetch.mp import MPError, MPQuery, fetch_mp
    from miscreen.store.structures import StructureStore

    url, bodies = odd_mp
    bodies["summary"] = body
    monkeypatch.setenv("MP_API_KEY", "miscreenTESTkey0123456789abcdefX")
    policy = RetryPolicy(attempts=1, base_delay=0, timeout=10)
    with pytest.raises(MPError, match=r"not a Materials Project API|list of JSON objects"):
        fetch_mp(StructureStore(tmp_path / "s"), MPQuery(), endpoint=url, policy=policy)
