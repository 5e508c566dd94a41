"""The checks of the best rows at merge time, on real mp-2018 rows: band gaps for every row,
stability estimated for the best rows without a source value (a snapshot match, else a hull
with a stand-in potential), BVSE for the best few, and each row saying which method served it."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Element, Structure

from miscreen import schema as S
from miscreen.batch import rank_screened
from miscreen.batch.top_checks import check_top
from miscreen.config import load_config
from miscreen.fetch.sources import load_candidates
from miscreen.screen.energies import EnergyCalculator
from tests.conftest import SHARED

CONFIG = """
run_name: checks
results_dir: {root}/results
models_dir: {root}/models
cache_dir: {root}/cache
candidates:
  - {{kind: jsonl, path: {root}/candidates.jsonl}}
screen:
  exclude_redox: true
  min_band_gap: 1.0
  max_e_above_hull: 0.05
  stability_top: 3
  bvse_top: 2
  references:
    - {{kind: jsonl, path: {root}/references.jsonl, require_elements: []}}
"""


def _snapshot_rows() -> list[dict]:
    with gzip.open(SHARED / "mp-2018" / "mp_2018_matminer.jsonl.gz", "rt") as fh:
        return [json.loads(line) for line in fh]


def _stand_in(structures: list[Structure]) -> list[float]:
    """Energy per atom from the composition alone: every polymorph of a formula ties."""
    return [-1.0 - 2.0 * s.composition.get_atomic_fraction(Element("Li")) for s in structures]


@pytest.fixture(scope="module")
def checked(tmp_path_factory) -> pd.DataFrame:
    root = tmp_path_factory.mktemp("checks")
    rows = _snapshot_rows()
    with_gap = [r for r in rows if "band_gap" in r][:60]
    systems = ({"Li", "N"}, {"Li", "Pt"})  # the snapshot's Li binaries with energies
    li_x = [r for r in rows if _elements(r) in systems and "e_above_hull" in r]
    assert len(li_x) == 5
    candidates = []
    for i, row in enumerate(li_x[:4] + with_gap[:2]):
        cand = {**row, "material_id": f"cand-{i}"}
        if i < 3:  # the source gives no stability: it must be estimated
            cand.pop("e_above_hull", None)
        if i == 2:  # a cell no snapshot entry matches: the hull route
            cand["structure"] = _distorted(row["structure"])
        candidates.append(cand)
    redox = next(r for r in rows if {"Li", "Fe"} <= _elements(r) and "band_gap" not in r)
    candidates.append({**redox, "material_id": "cand-redox"})  # filtered: no gap estimate
    (root / "candidates.jsonl").write_text("".join(json.dumps(c) + "\n" for c in candidates))
    elemental = ({"Li"}, {"N"}, {"Pt"})
    references = with_gap + li_x + [r for r in rows if _elements(r) in elemental]
    (root / "references.jsonl").write_text("".join(json.dumps(r) + "\n" for r in references))
    config = root / "checks.yaml"
    config.write_text(CONFIG.format(root=root))
    cfg = load_config(config)
    records = load_candidates(cfg).records.drop(columns=[S.STRUCTURE])
    n = len(records)
    predicted = records.assign(
        **{
            S.PRED: np.linspace(-2, -6, n),
            S.UNCERTAINTY: 0.5,
            S.OUT_OF_DOMAIN: False,
            S.P_FAST: np.linspace(0.9, 0.1, n),
            S.MODEL: "m",
        }
    )
    predicted[S.LOWER], predicted[S.UPPER] = predicted[S.PRED] - 0.5, predicted[S.PRED] + 0.5
    calc = EnergyCalculator(_stand_in, cache_dir=root / "cache")
    result = check_top(cfg, predicted, lambda t: rank_screened(cfg, t), calc)
    out = rank_screened(cfg, result.table).set_index(S.ID)
    out.attrs["has_gap"] = sorted(c["material_id"] for c in candidates if "band_gap" in c)
    return out


def _elements(row: dict) -> set[str]:
    return {sp["element"] for site in row["structure"]["sites"] for sp in site["species"]}


def _distorted(structure: dict) -> dict:
    """Another polymorph: every other site moved by a quarter of the cell along a and b."""
    out = json.loads(json.dumps(structure))
    for site in out["sites"][::2]:
        a, b, c = site["abc"]
        site["abc"] = [(a + 0.25) % 1.0, (b + 0.25) % 1.0, c]
        site.pop("xyz", None)
    return out


def test_every_row_has_a_band_gap_with_its_method(checked):
    filtered = checked.loc["cand-redox"]
    assert filtered[S.BAND_GAP_METHOD] == "not estimated: filtered out"
    assert np.isnan(filtered[S.BAND_GAP]) and filtered[S.EXCLUDED].startswith("redox-active")
    checked = checked.drop(index="cand-redox")
    methods = checked[S.BAND_GAP_METHOD]
    assert methods.notna().all() and (methods != "").all()
    assert (checked[S.BAND_GAP].notna()).all()
    given = checked.index.isin(checked.attrs["has_gap"])  # rows whose snapshot gives a gap
    assert 0 < given.sum() < len(given)
    assert (methods[given] == "source").all()
    assert (checked.loc[given, S.BAND_GAP_SD] == 0).all()
    assert set(methods[~given]) <= {"composition_model", "composition_n_model"}


def test_stability_of_the_best_rows_is_estimated_and_says_how(checked):
    methods = checked[S.STABILITY_METHOD]
    assert methods["cand-3"] == "source"
    estimated = methods[["cand-0", "cand-1", "cand-2"]]
    assert all(m != "" and not m.startswith("not estimated") for m in estimated)
    matched = [m for m in estimated if m.startswith("matched:")]
    assert matched, estimated  # an unchanged snapshot structure is found in the references
    # moved sites: no match; the stand-in potential puts it on the Li3N-N line
    assert methods["cand-2"] == "chgnet_hull"
    assert "fitted:Li" in checked.loc["cand-2", S.HULL_PHASES].split(",")
    assert checked.loc["cand-2", S.E_HULL] == pytest.approx(0.0, abs=1e-6)
    assert "no elemental Li (fitted to" in checked.loc["cand-2", S.HULL_WARNING]


def test_bvse_for_the_best_rows_and_a_reason_for_the_others(checked):
    ranked = checked[checked[S.RANK].notna()].sort_values(S.RANK)
    best = ranked.index[:2]
    for rid in best:
        assert np.isfinite(checked.at[rid, S.BVSE_E3D]) or checked.at[rid, S.BVSE_METHOD]
    rest = ranked.index[2:]
    assert all(checked.loc[rest, S.BVSE_METHOD].str.startswith("not checked: below the best 2"))
    assert "BVSE" in checked.at[best[0], S.WHY]


def test_a_config_without_checks_changes_nothing(tmp_path):
    config = tmp_path / "plain.yaml"
    config.write_text(f"run_name: plain\nresults_dir: {tmp_path}/r\nmodels_dir: {tmp_path}/m\n")
    cfg = load_config(config)
    table = pd.DataFrame({S.ID: ["a"], S.PRED: [-3.0]})
    result = check_top(cfg, table, lambda t: t)
    assert result.table is table and result.failures.empty


def test_a_users_store_of_reference_phases_joins_the_hull(tmp_path):
    """Phases a user fetched into a structure store (here with `miscreen fetch local` from
    a JSONL of snapshot rows) are reference phases: their energies above the hull come
    along, and a hull is built from them."""
    from typer.testing import CliRunner

    from miscreen.cli.fetch import app
    from miscreen.config import StoreSource
    from miscreen.fetch.sources import load_references
    from miscreen.screen.stability import stability_table

    rows = [r for r in _snapshot_rows() if _elements(r) in ({"Li", "N"}, {"N"})]
    (tmp_path / "phases.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    store = tmp_path / "store"
    args = ["local", "--path", str(tmp_path / "phases.jsonl"), "--out", str(store)]
    assert CliRunner().invoke(app, args).exit_code == 0
    refs = load_references([StoreSource(path=store)]).records
    assert len(refs) == len(rows)
    assert refs[S.E_HULL].notna().sum() == sum("e_above_hull" in r for r in rows) > 2
    lin3 = next(r for r in rows if r["formula"] == "LiN3")
    cand = pd.DataFrame(
        {
            S.ID: ["new"],
            S.COMPOSITION: ["LiN3"],
            S.STRUCTURE: [json.dumps(_distorted(lin3["structure"]))],
        }
    )
    out = stability_table(cand, refs, EnergyCalculator(_stand_in))
    assert out.at[0, S.STABILITY_METHOD] == "chgnet_hull"
    assert set(out.at[0, S.HULL_PHASES].split(",")) & set(refs[S.ID])


def test_a_malformed_reference_line_is_left_out_not_fatal(tmp_path):
    from miscreen.fetch.reference_rows import reference_rows

    good = _snapshot_rows()[0]
    bad = [
        {"material_id": "x1", "structure": {"sites": ["Li"], "lattice": {}}},
        {"material_id": "x2", "structure": {"sites": {"a": 1}, "lattice": {}}},
        {"material_id": "x3", "structure": "not a dict"},
    ]
    path = tmp_path / "refs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [good, *bad]) + "{broken\n")
    table = reference_rows(path, "mine")
    assert list(table[S.ID]) == [good["material_id"]]
