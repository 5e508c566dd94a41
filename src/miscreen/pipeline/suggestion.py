"""Wiring of ``miscreen suggest``: the next experiments from a run's ranked candidates."""

from __future__ import annotations

import pandas as pd

from miscreen import atomic_io
from miscreen.catalog import RunCatalog
from miscreen.config import Config
from miscreen.errors import UserError
from miscreen.pipeline.stages import report_stage, write_manifest
from miscreen.suggest.campaign import append_round, read_campaign
from miscreen.suggest.next_round import Suggestions, suggest_next

SECTION_ORDER = 70  # after the verify sections in the report


def suggest_stage(
    cfg: Config, k: int, acquisition: str, diversity: str = "chemsys", physics_prior: bool = True
) -> pd.DataFrame:
    """The next ``k`` experiments from the run's ranked candidates (``suggestions.csv``, a
    round in ``campaign.jsonl``, a report section), then the report is rendered again."""
    picks = write_suggestions(
        cfg.run, k, acquisition, diversity, cfg.model.interval, cfg.seed, physics_prior
    )
    settings = {"acquisition": acquisition, "batch": k, "diversity": diversity}
    write_manifest(cfg, "suggest", settings | {"physics_prior": physics_prior})
    report_stage(cfg)
    return picks


def write_suggestions(
    run: RunCatalog,
    k: int,
    acquisition: str,
    diversity: str,
    interval: float,
    seed: int,
    physics_prior: bool = True,
) -> pd.DataFrame:
    """Read what the suggest stage needs from the run folder, run it, and write its picks
    (``suggestions.csv``), its round (``campaign.jsonl``) and its report section."""
    ranked, measured = read_pool(run)
    rounds = read_campaign(run.campaign) if run.campaign.exists() else []
    metrics = atomic_io.read_json(run.metrics) if run.metrics.exists() else {}
    out: Suggestions = suggest_next(
        *(ranked, measured, rounds, metrics, k, acquisition, diversity, interval, seed),
        physics_prior=physics_prior,
    )
    atomic_io.write_table(out.picks, run.suggestions)
    append_round(run.campaign, out.round)
    run.write_section("suggest", out.section, order=SECTION_ORDER)
    return out.picks


def read_pool(run: RunCatalog) -> tuple[pd.DataFrame, pd.DataFrame]:
    """-> (the run's ranked candidates, its measured materials); a :class:`UserError`
    naming the command to run when either is missing."""
    if not run.candidates_parquet.is_file():
        raise UserError(
            f"{run.candidates_parquet} is missing: screen first (`miscreen run CONFIG`)"
        )
    if not run.known_materials.is_file():
        raise UserError(f"{run.known_materials} is missing: train first (`miscreen train CONFIG`)")
    ranked = atomic_io.read_table(run.candidates_parquet)
    return ranked, atomic_io.read_table(run.known_materials)


def suggestion_lines(picks: pd.DataFrame) -> list[str]:
    """The picks for a terminal: formula, id, prediction with interval, nearest measured."""
    return [
        f"{int(row['rank']):2d}. {row['formula']:<14} {row['id']:<12} "
        f"log10 σ {row['predicted_log10_sigma']:.2f} [{row['lower']:.2f}, {row['upper']:.2f}]"
        f"; nearest measured {row['nearest_measured_composition']} "
        f"({row['nearest_measured_log10_sigma']:.2f})"
        for row in picks.to_dict("records")
    ]
