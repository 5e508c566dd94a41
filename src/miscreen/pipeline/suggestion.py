"""Wiring of ``miscreen suggest``: the next experiments from a run's ranked candidates."""

from __future__ import annotations

import pandas as pd

from miscreen.config import Config
from miscreen.pipeline.stages import report_stage, write_manifest
from miscreen.suggest.run import suggest_for_run


def suggest_stage(
    cfg: Config, k: int, acquisition: str, diversity: str = "chemsys"
) -> pd.DataFrame:
    """The next ``k`` experiments from the run's ranked candidates (``suggestions.csv``, a
    round in ``campaign.jsonl``, a report section), then the report is rendered again."""
    picks = suggest_for_run(cfg.run, k, acquisition, diversity, cfg.model.interval, cfg.seed)
    write_manifest(cfg, "suggest", {"acquisition": acquisition, "batch": k, "diversity": diversity})
    report_stage(cfg)
    return picks
