"""Rediscovering Li10GeP2S12 (LGPS): train with the LGPS family held out, screen a pool of
Li structures from Materials Project snapshots plus the held-out entries, and see where
LGPS lands.

Two hold-outs: ``standard`` removes every OBELiX entry of family "LGPS"; ``strict`` also
removes the thio-LISICON entries containing Ge, P and S (the Li(4-x)Ge(1-x)PxS4 series
from which LGPS was found). Model settings come from the config, chosen by cross-validation
on training data; nothing here is tuned on the LGPS result.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Composition

from miscreen import atomic_io, batch, pipeline
from miscreen import schema as S
from miscreen.cases.lgps_section import case_section
from miscreen.catalog import unique_inputs
from miscreen.config import Config
from miscreen.fetch.sources import Loaded, load_candidates, load_obelix_split
from miscreen.screen import RANK
from miscreen.store.structures import DUPLICATE_OF, flag_cross_source_duplicates
from miscreen.train.routing import save_models

log = logging.getLogger(__name__)

LGPS_FAMILY = "LGPS"
THIO_LISICON = "thio-LISICON"
GE_P_S = frozenset({"Ge", "P", "S"})
MEASURED_SIGMA_S_CM = 0.012
MEASURED_LOG10_SIGMA = math.log10(MEASURED_SIGMA_S_CM)
MEASURED_SOURCE = "N. Kamaya et al., A lithium superionic conductor, Nat. Mater. 10, 682 (2011)."
TARGETS = {"Ge": "Li10GeP2S12", "Si": "Li10SiP2S12", "Sn": "Li10SnP2S12"}
REFERENCE_ID = "pymatgen:Li10GeP2S12"
HOLDOUTS = ("standard", "strict")
STRICT_CANDIDATES = "candidates_strict.parquet"
STRICT_KNOWN = "known_materials_strict.parquet"  # the strict hold-out's training rows
HELDOUT_PREDICTIONS = "heldout_predictions.csv"
POOL_DUPLICATES = "pool_duplicates.csv"
HEADLINE = (
    "pool_size",
    "lgps_rank",
    "lgps_percentile",
    "lgps_pred_log10_sigma",
    "lgps_interval",
    "si_analogue_ranks",
    "sn_analogue_ranks",
    "strict_lgps_rank",
    "strict_lgps_percentile",
    "strict_lgps_pred_log10_sigma",
    "strict_lgps_interval",
    "runtime_s",
)


@dataclass
class Screened:
    """One hold-out's trained models, CV metrics, held-out predictions and ranked pool."""

    name: str
    metrics: dict
    heldout: pd.DataFrame
    ranked: pd.DataFrame
    training_rows: int


def elements_of(composition: object) -> frozenset[str]:
    """Element symbols of a formula (empty, with a warning, when it does not parse)."""
    try:
        return frozenset(el.symbol for el in Composition(str(composition)).elements)
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        log.warning("LGPS case: composition %r does not parse (%s); no elements", composition, exc)
        return frozenset()


def holdout_mask(records: pd.DataFrame, strict: bool = False) -> pd.Series:
    """True for labelled rows held out of training: the LGPS family and every row whose
    reduced formula is one of the targets (OBELiX lists a Li10GeP2S12 and a Li10SnP2S12
    measurement, ``zzr`` and ``kko``, under family "unknown"), and under ``strict`` also
    thio-LISICON rows whose composition contains Ge, P and S."""
    targets = {Composition(t).reduced_formula for t in TARGETS.values()}
    held = records[S.FAMILY].eq(LGPS_FAMILY) | records[S.COMPOSITION].map(
        lambda c: reduced_formula(c) in targets
    )
    if strict:
        ge_p_s = records[S.COMPOSITION].map(lambda c: GE_P_S <= elements_of(c))
        held |= records[S.FAMILY].eq(THIO_LISICON) & ge_p_s
    return held.fillna(False).astype(bool)


def reduced_formula(composition: object) -> str | None:
    """pymatgen's reduced formula, or None when the composition does not parse."""
    try:
        return Composition(str(composition)).reduced_formula
    except (ValueError, KeyError, TypeError, OverflowError):
        return None


def matches_formula(composition: object, target: str, atol: float = 0.01) -> bool:
    """Same elements as ``target`` and atomic fractions within ``atol`` (so slightly
    off-stoichiometric or disordered cells of the same phase count)."""
    try:
        comp = Composition(str(composition)).fractional_composition
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        log.warning("LGPS case: composition %r does not parse (%s); no match", composition, exc)
        return False
    goal = Composition(target).fractional_composition
    if {e.symbol for e in comp.elements} != {e.symbol for e in goal.elements}:
        return False
    return all(abs(comp[el] - goal[el]) <= atol for el in goal.elements)


def deduplicate_pool(records: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """-> (unique records, duplicates with ``duplicate_of``). A record is a duplicate when
    pymatgen's StructureMatcher matches it to an earlier record of another source (cheap
    prefilter: same reduced formula, similar volume per atom); records without a structure
    are kept."""
    flagged = flag_cross_source_duplicates(records.reset_index(drop=True))
    dup = flagged[DUPLICATE_OF].notna()
    return flagged[~dup].reset_index(drop=True), flagged[dup].reset_index(drop=True)


def training_data(cfg: Config, strict: bool) -> tuple[Loaded, pd.DataFrame]:
    """-> (training rows with the hold-out removed, the held-out rows)."""
    if cfg.data.train != "obelix":
        raise ValueError("the LGPS case trains on OBELiX: set data.train to 'obelix'")
    loaded = load_obelix_split(cfg.data.train_split, data_dir=cfg.data_path)
    held = holdout_mask(loaded.records, strict) | loaded.records[S.FAMILY].isin(
        cfg.data.exclude_families
    )
    train = Loaded(loaded.records[~held].reset_index(drop=True), loaded.failures, loaded.inputs)
    return train, loaded.records[held].reset_index(drop=True)


def variant_config(cfg: Config, name: str) -> Config:
    """The config of one hold-out: its own model directory (``models/<run>-<name>``)."""
    if name == "standard":
        return cfg
    return cfg.model_copy(update={"run_name": f"{cfg.run_name}-{name}"})


def known_path(cfg: Config, name: str) -> Path:
    """Where one hold-out's measured materials (its training rows) are kept: the run's
    ``known_materials.parquet`` for the standard hold-out."""
    return cfg.run.known_materials if name == "standard" else cfg.run.file(STRICT_KNOWN)


def screen_variant(cfg: Config, name: str, pool: pd.DataFrame) -> tuple[Screened, pd.DataFrame]:
    """Train under one hold-out (its models saved to ``models/<run>[-strict]`` for the
    report's importances), predict its held-out rows and screen the pool the way ``miscreen
    run`` screens (``batch.screen_records``: the same criteria, filters, known-material
    exclusion against this hold-out's training rows, score and columns)."""
    vcfg = variant_config(cfg, name)
    train, heldout = training_data(cfg, strict=name == "strict")
    models = save_models(pipeline.train(vcfg, train), vcfg.models)
    held_metrics, held_pred, held_fail = pipeline.evaluate(
        cfg, models, Loaded(heldout, S.empty_failures())
    )
    known = known_path(cfg, name)
    atomic_io.write_table(pipeline.known_materials([train.records]), known)
    predictor = batch.Predictor.from_config(vcfg)  # the hold-out's models
    if predictor.known is not None:
        predictor = replace(predictor, known=str(known.resolve()))
    ranked, pool_fail = batch.screen_records(cfg, pool, predictor)
    cv_mae, cv_n = models.routed_cv
    metrics = {"cv_mae": cv_mae, "cv_n": cv_n, "routing": models.routing}
    metrics |= held_metrics
    fails = pd.concat([train.failures, models.failures, held_fail, pool_fail], ignore_index=True)
    return Screened(name, metrics, held_pred, ranked, len(train.records)), fails


def rank_info(ranked: pd.DataFrame, row_id: str) -> dict:
    """Rank, percentile (share of ranked rows at or above it) and prediction of one id."""
    n = int(ranked[RANK].notna().sum())
    rows = ranked[ranked[S.ID] == row_id]
    if rows.empty or pd.isna(rows.iloc[0][RANK]):
        reason = "" if rows.empty else str(rows.iloc[0].get("excluded_reason", ""))
        return {"id": row_id, "rank": None, "excluded_reason": reason or "not in pool"}
    r = rows.iloc[0]
    return {
        "id": row_id,
        "formula": r[S.FORMULA],
        "source": r[S.SOURCE],
        "rank": int(r[RANK]),
        "percentile": round(100.0 * int(r[RANK]) / n, 3),
        "pred_log10_sigma": float(r["predicted_log10_sigma"]),
        "interval": [float(r["lower"]), float(r["upper"])],
        "out_of_domain": bool(r["out_of_domain"]),
        "model": r["model"],
    }


def analogue_ranks(ranked: pd.DataFrame, formula: str) -> list[dict]:
    """Every ranked-pool row whose composition matches ``formula``, best first."""
    hits = ranked[ranked[S.COMPOSITION].map(lambda c: matches_formula(c, formula))]
    return [rank_info(ranked, i) for i in hits.sort_values(RANK)[S.ID]]


def family_ranks(ranked: pd.DataFrame, heldout: pd.DataFrame) -> list[dict]:
    """Ranks of the held-out LGPS-family entries that are in the pool (those with CIFs)."""
    family = heldout.loc[heldout[S.FAMILY].eq(LGPS_FAMILY), S.ID].astype(str)
    hits = ranked[ranked[S.ID].astype(str).isin(set(family))].sort_values(RANK)
    return [rank_info(ranked, i) for i in hits[S.ID]]


def variant_summary(v: Screened) -> dict:
    """The case numbers of one hold-out."""
    ref = rank_info(v.ranked, REFERENCE_ID)
    interval = ref.get("interval")
    return {
        "training_rows": v.training_rows,
        "heldout_rows": len(v.heldout),
        "heldout_rows_with_structure": int(v.heldout[S.HAS_STRUCTURE].astype(bool).sum()),
        "heldout_ids": sorted(v.heldout[S.ID].astype(str)),
        "heldout_families": sorted(v.heldout[S.FAMILY].dropna().unique().tolist()),
        "lgps": ref,
        "lgps_covers_measured": bool(
            interval is not None and interval[0] <= MEASURED_LOG10_SIGMA <= interval[1]
        ),
        "lgps_error": (
            None if ref.get("rank") is None else ref["pred_log10_sigma"] - MEASURED_LOG10_SIGMA
        ),
        "analogues": {el: analogue_ranks(v.ranked, f) for el, f in TARGETS.items()},
        "heldout_family_in_pool": family_ranks(v.ranked, v.heldout),
        "top20": top_rows(v.ranked, 20),
        "metrics": v.metrics,
    }


def top_rows(ranked: pd.DataFrame, k: int) -> list[dict]:
    """The top ``k`` ranked rows with the values that explain their place."""
    cols = [RANK, S.ID, S.SOURCE, S.FORMULA, "predicted_log10_sigma", "lower", "upper", "why"]
    top = ranked[ranked[RANK].notna()].head(k)[cols]
    return [{c: _plain(v) for c, v in row.items()} for row in top.to_dict("records")]


def _plain(value: object) -> object:
    if isinstance(value, np.integer | np.floating):
        return value.item()
    return None if value is pd.NA else value


def case_summary(standard: Screened, strict: Screened, pool_size: int, n_dup: int) -> dict:
    """``case.json``: the headline numbers first, then each hold-out in full."""
    s, t = variant_summary(standard), variant_summary(strict)
    lgps, slgps = s["lgps"], t["lgps"]
    return {
        "pool_size": pool_size,
        "pool_ranked": int(standard.ranked[RANK].notna().sum()),
        "pool_duplicates_removed": n_dup,
        "reference_id": REFERENCE_ID,
        "measured_log10_sigma": MEASURED_LOG10_SIGMA,
        "measured_source": MEASURED_SOURCE,
        "lgps_rank": lgps.get("rank"),
        "lgps_percentile": lgps.get("percentile"),
        "lgps_pred_log10_sigma": lgps.get("pred_log10_sigma"),
        "lgps_interval": lgps.get("interval"),
        "lgps_interval_covers_measured": s["lgps_covers_measured"],
        "si_analogue_ranks": [a["rank"] for a in s["analogues"]["Si"]],
        "sn_analogue_ranks": [a["rank"] for a in s["analogues"]["Sn"]],
        "strict_lgps_rank": slgps.get("rank"),
        "strict_lgps_percentile": slgps.get("percentile"),
        "strict_lgps_pred_log10_sigma": slgps.get("pred_log10_sigma"),
        "strict_lgps_interval": slgps.get("interval"),
        "strict_lgps_interval_covers_measured": t["lgps_covers_measured"],
        "strict_si_analogue_ranks": [a["rank"] for a in t["analogues"]["Si"]],
        "strict_sn_analogue_ranks": [a["rank"] for a in t["analogues"]["Sn"]],
        "standard": s,
        "strict": t,
    }


def build_pool(cfg: Config) -> tuple[pd.DataFrame, pd.DataFrame, Loaded]:
    """-> (deduplicated pool, removed duplicates, everything loaded) from the config's
    candidate sources; sources listed earlier win a duplicate."""
    loaded = load_candidates(cfg)
    pool, dups = deduplicate_pool(loaded.records)
    log.info("pool: %d records, %d cross-source duplicates removed", len(pool), len(dups))
    return pool, dups, loaded


def run_case(cfg: Config) -> dict:
    """Run both hold-outs and write ``results/<run>/``: ranked pools, held-out predictions,
    metrics, manifest, ``case.json`` and the report with its LGPS section."""
    started = time.perf_counter()
    run_dir = cfg.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    pool, dups, loaded = build_pool(cfg)
    variants, failures = {}, [loaded.failures]
    for name in HOLDOUTS:
        variants[name], fails = screen_variant(cfg, name, pool)
        failures.append(fails)
    summary = case_summary(variants["standard"], variants["strict"], len(pool), len(dups))
    summary["runtime_s"] = round(time.perf_counter() - started, 1)
    failures = pd.concat(failures, ignore_index=True)
    write_outputs(cfg, variants, dups, failures, loaded, summary)
    pipeline.report_stage(cfg)
    return summary


def headline(summary: dict) -> dict:
    """The numbers ``miscreen case lgps`` prints."""
    return {k: summary.get(k) for k in HEADLINE}


def write_outputs(
    cfg: Config,
    variants: dict[str, Screened],
    dups: pd.DataFrame,
    failures: pd.DataFrame,
    loaded: Loaded,
    summary: dict,
) -> None:
    """Write the run folder (through its catalog) and the case's report section."""
    run = cfg.run
    std, strict = variants["standard"], variants["strict"]
    batch.write_candidates(run, std.ranked)
    atomic_io.write_table(strict.ranked, run.file(STRICT_CANDIDATES))
    atomic_io.write_table(std.heldout, run.test_predictions)
    both = pd.concat([v.heldout.assign(holdout=v.name) for v in variants.values()])
    atomic_io.write_table(both, run.file(HELDOUT_PREDICTIONS))
    dup_cols = [S.ID, S.SOURCE, S.FORMULA, DUPLICATE_OF]
    atomic_io.write_table(dups.reindex(columns=dup_cols), run.file(POOL_DUPLICATES))
    run.write_failures("case", failures)
    metrics = {**std.metrics, "evaluation_set": "held-out LGPS family (standard hold-out)"}
    atomic_io.write_json(run.metrics, metrics)
    atomic_io.write_json(run.case_json, summary)
    entry = {
        "case": "lgps",
        "inputs": unique_inputs(loaded.inputs),
        "models": {v: str(variant_config(cfg, v).model_dir) for v in HOLDOUTS},
        "folders": cfg.folders(),
    }
    run.update_manifest(cfg.model_dump(mode="json"), cfg.seed, "case", entry)
    run.write_section("lgps", case_section(summary, std.ranked, strict.ranked, run), order=60)
