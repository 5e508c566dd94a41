"""The LGPS case logic: hold-outs, pool deduplication, formula matching, and a reduced
end-to-end case (small model, small pool) that writes case.json and the report section."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from miscreen import atomic_io
from miscreen import schema as S
from miscreen.cases import lgps
from miscreen.catalog import RunCatalog
from miscreen.cli import app
from miscreen.config import Config, DataConfig, JsonlSource
from miscreen.fetch.sources import load_candidates
from miscreen.screen.known import KNOWN_MATCH
from tests.conftest import small_config

GE_P_S_THIO = {"o4u", "yy9", "mvq", "2yl", "5qm", "3jh", "j3x", "kmr"}
CASE_KEYS = {
    "lgps_rank",
    "pool_size",
    "lgps_percentile",
    "lgps_pred_log10_sigma",
    "lgps_interval",
    "strict_lgps_rank",
    "strict_lgps_pred_log10_sigma",
    "si_analogue_ranks",
    "sn_analogue_ranks",
}


@pytest.fixture(scope="module")
def cfg() -> Config:
    return Config(data=DataConfig(train_split="all", test_split=None, exclude_families=("LGPS",)))


def test_standard_holdout_removes_every_lgps_row(cfg, obelix_all):
    train, held = lgps.training_data(cfg, strict=False)
    assert not train.records[S.FAMILY].eq("LGPS").any()
    n_lgps = int(obelix_all[0][S.FAMILY].eq("LGPS").sum())
    assert n_lgps == 36 and len(held) == n_lgps + 2
    # Li10GeP2S12 and Li10SnP2S12 measured in another paper, without a family label
    assert set(held.loc[~held[S.FAMILY].eq("LGPS"), S.ID]) == {"zzr", "kko"}
    formulas = train.records[S.COMPOSITION].map(lgps.reduced_formula)
    assert not formulas.isin(["Li10Ge(PS6)2", "Li10Sn(PS6)2", "Li10Si(PS6)2"]).any()
    assert len(train.records) + len(held) == 599
    assert GE_P_S_THIO <= set(train.records[S.ID])  # the standard hold-out keeps them


def test_strict_holdout_also_removes_ge_p_s_thio_lisicon(cfg):
    train, held = lgps.training_data(cfg, strict=True)
    assert set(held.loc[held[S.FAMILY] == "thio-LISICON", S.ID]) == GE_P_S_THIO
    thio = train.records[train.records[S.FAMILY] == "thio-LISICON"]
    assert not thio[S.COMPOSITION].map(lambda c: {"Ge", "P", "S"} <= lgps.elements_of(c)).any()
    assert {"e6b", "b4c"} <= set(thio[S.ID])  # Li4GeS4 (no P) and Si rows stay
    assert not train.records[S.FAMILY].eq("LGPS").any()


def test_holdout_needs_obelix(cfg):
    other = cfg.model_copy(update={"data": DataConfig(train=Path("x.csv"))})
    with pytest.raises(ValueError, match="trains on OBELiX"):
        lgps.training_data(other, strict=False)


def test_matches_formula():
    assert lgps.matches_formula("Li20.2Ge2.06P3.94S24", "Li10GeP2S12")
    assert lgps.matches_formula("Li10Ge(PS6)2", "Li10GeP2S12")
    assert not lgps.matches_formula("Li21Ge3P3S24", "Li10GeP2S12")  # x = 1: other phase
    assert not lgps.matches_formula("Li10SnP2S12", "Li10GeP2S12")
    assert lgps.matches_formula("Li19.62Sn1.62P4.38S24", "Li10SnP2S12")
    assert not lgps.matches_formula("not a formula", "Li10GeP2S12")


def _jsonl(path: Path, rows: list[dict]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    return path


@pytest.fixture(scope="module")
def mp_rows() -> list[dict]:
    """The first five Li structures of the Materials Project 2018 snapshot."""
    from tests.conftest import SHARED

    rows = []
    with gzip.open(SHARED / "mp-2018" / "mp_2018_matminer.jsonl.gz", "rt") as fh:
        for line in fh:
            obj = json.loads(line)
            if any(s["species"][0]["element"] == "Li" for s in obj["structure"]["sites"]):
                rows.append(obj)
            if len(rows) == 5:
                return rows
    raise AssertionError("fewer than 5 Li structures in the snapshot")


@pytest.fixture(scope="module")
def pool_files(tmp_path_factory, mp_rows) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("pool")
    first = _jsonl(root / "first.jsonl.gz", mp_rows)
    # another source repeating rows 0-2 (no ids: row numbers), and row 3 expanded by 40 %
    stretched = json.loads(json.dumps(mp_rows[3]))
    for vec in stretched["structure"]["lattice"]["matrix"]:
        vec[:] = [x * 1.4 ** (1 / 3) for x in vec]
    stretched["structure"]["lattice"].pop("volume", None)
    copies = [{**r, "row": i} for i, r in enumerate([*mp_rows[:3], stretched])]
    return first, _jsonl(root / "second.jsonl.gz", copies)


def test_dedup_removes_cross_source_copies_only(pool_files, mp_rows):
    first, second = pool_files
    cfg = Config(
        candidates=(
            JsonlSource(path=first),
            JsonlSource(path=second, id_field="row", id_prefix="copy-"),
        )
    )
    records = load_candidates(cfg).records
    pool, dups = lgps.deduplicate_pool(records)
    assert len(records) == 9
    assert sorted(dups[S.ID]) == ["copy-0", "copy-1", "copy-2"]
    assert sorted(dups["duplicate_of"]) == sorted(r["material_id"] for r in mp_rows[:3])
    assert set(pool[S.ID]) == {r["material_id"] for r in mp_rows} | {"copy-3"}


CASE_CANDIDATES = """
  - kind: pymatgen
    names: [Li10GeP2S12, LiFePO4, Li2O]
  - kind: obelix
    split: all
    families: [LGPS]
    require_structure: true
  - kind: jsonl
    path: {first}
  - kind: jsonl
    path: {second}
    id_field: row
    id_prefix: copy-
"""
CASE_DATA = "{train: obelix, train_split: all, test_split: null, exclude_families: [LGPS]}"


@pytest.fixture(scope="module")
def small_case(tmp_path_factory, pool_files):
    root = tmp_path_factory.mktemp("case")
    first, second = pool_files
    cfg = root / "case.yaml"
    cands = CASE_CANDIDATES.format(first=first, second=second)
    cfg.write_text(small_config(root, "lgps-small", cands, "{top_k: 5}", CASE_DATA))
    result = CliRunner().invoke(app, ["case", "lgps", str(cfg)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return root / "results" / "lgps-small", result.output


def test_case_json_has_the_numbers(small_case):
    run_dir, output = small_case
    case = json.loads((run_dir / "case.json").read_text())
    assert CASE_KEYS <= set(case)
    # 3 pymatgen + 12 OBELiX LGPS-family CIFs + 5 + 4 jsonl rows, 3 of them duplicates
    assert case["pool_size"] == 21 and case["pool_duplicates_removed"] == 3
    assert 1 <= case["lgps_rank"] <= case["pool_ranked"]
    pct = 100 * case["lgps_rank"] / case["pool_ranked"]
    assert case["lgps_percentile"] == pytest.approx(pct, abs=1e-3)
    lo, hi = case["lgps_interval"]
    assert lo < case["lgps_pred_log10_sigma"] < hi
    assert case["measured_log10_sigma"] == pytest.approx(-1.921, abs=1e-3)
    assert len(case["sn_analogue_ranks"]) == 3 and case["si_analogue_ranks"] == []
    assert len(case["standard"]["top20"]) == 20 and case["standard"]["top20"][0]["why"]
    assert case["standard"]["heldout_rows"] == 38 and case["strict"]["heldout_rows"] == 46
    assert case["strict"]["training_rows"] == case["standard"]["training_rows"] - 8
    in_pool = case["standard"]["heldout_family_in_pool"]
    assert len(in_pool) == 12 and all(r["rank"] for r in in_pool)  # OBELiX LGPS with CIFs
    assert '"lgps_rank":' in output


def test_case_trains_separate_models_per_holdout(small_case):
    run_dir, _ = small_case
    models = run_dir.parents[1] / "models"
    std = json.loads((models / "lgps-small" / "composition" / "model.json").read_text())
    strict = json.loads((models / "lgps-small-strict" / "composition" / "model.json").read_text())
    assert strict["training_rows"] == std["training_rows"] - 8
    held = (run_dir / "heldout_predictions.csv").read_text()
    assert "kmr" in held and "strict" in held


def test_case_report_tells_the_story(small_case):
    run_dir, _ = small_case
    html = (run_dir / "report.html").read_text()
    assert 'id="lgps"' in html and "Kamaya" in html
    assert "strict (+ Ge–P–S thio-LISICON)" in html and "Top 20 under the strict hold-out" in html
    for name in ("lgps_standard", "lgps_strict"):
        assert (run_dir / "figures" / f"{name}.png").is_file()


KNOWN_CANDIDATES = """
  - kind: pymatgen
    names: [Li10GeP2S12, Li2O]
  - kind: obelix
    split: all
    families: [LGPS]
    require_structure: true
"""


def test_case_screens_like_miscreen_run(tmp_path, small_case):
    """The case ranks its pool through the screening path of ``miscreen run``: the same
    columns, and the known-material exclusion against each hold-out's own training rows
    (no training row may share the held-out LGPS's formula: OBELiX row zzr, Li10GeP2S12
    without a family label, is held out with the family)."""
    std_dir, _ = small_case  # built first: its features are cached for this case
    config = tmp_path / "known.yaml"
    screen = "{top_k: 5, exclude_known: true}"
    config.write_text(small_config(tmp_path, "lgps-known", KNOWN_CANDIDATES, screen, CASE_DATA))
    result = CliRunner().invoke(app, ["case", "lgps", str(config)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    run = RunCatalog(tmp_path / "results" / "lgps-known")
    ranked = atomic_io.read_table(run.candidates_parquet).set_index(S.ID)
    # the held-out LGPS CIFs are unmeasured for these models: ranked, never "already measured"
    ranked_ids = set(ranked.index[ranked[S.RANK].notna()])
    assert {"j8q", "mtn", lgps.REFERENCE_ID} <= ranked_ids
    assert not ranked[S.EXCLUDED].fillna("").str.contains("obelix zzr").any()
    assert "pymatgen:Li2O" in ranked_ids  # nobody measured this cell
    known = atomic_io.read_table(run.known_materials)
    strict_known = atomic_io.read_table(run.file(lgps.STRICT_KNOWN))
    assert not {"zzr", "kko"} & set(known[S.ID]) and not set(known[S.ID]) & set(ranked.index)
    assert len(strict_known) == len(known) - 8 and not GE_P_S_THIO & set(strict_known[S.ID])
    # the columns of a `miscreen run` table, in its order (the lead ones first)
    lead = [S.RANK, S.ID, S.SOURCE, S.FORMULA, S.PRED, S.UNCERTAINTY]
    columns = list(atomic_io.read_table(run.candidates_csv).columns)
    assert columns[:6] == lead and KNOWN_MATCH in columns and S.STRUCTURE not in columns
    assert KNOWN_MATCH not in pd.read_csv(std_dir / "candidates.csv", nrows=0).columns
