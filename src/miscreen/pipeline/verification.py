"""Wiring of the physics checks of a run's top candidates: BVSE barriers (``verify bvse``)
and machine-learned-potential MD (``verify md``)."""

from __future__ import annotations

import pandas as pd

from miscreen import atomic_io, batch
from miscreen import schema as S
from miscreen.config import Config
from miscreen.fetch.sources import load_candidates
from miscreen.pipeline.stages import report_stage
from miscreen.verify import barrier_table
from miscreen.verify.bvse_section import bvse_section


def verify_bvse_stage(cfg: Config, top: int) -> pd.DataFrame:
    """BVSE Li migration barriers for the ``top`` ranked candidates with a structure; the
    barrier columns join the candidate table, which is ranked again (``screen.barrier_weight``
    lets the barrier count in the score) and the report rendered again."""
    ranked = atomic_io.read_table(cfg.run.candidates_parquet)
    ids = set(ranked.loc[ranked[S.RANK].notna(), S.ID].astype(str).head(top))
    records = load_candidates(cfg).records
    chosen = records[records[S.ID].astype(str).isin(ids)]
    table, failures = barrier_table(chosen, time_limit_s=cfg.features.time_limit_s)
    table = table.reset_index() if S.ID not in table else table
    kept = ranked.drop(columns=[c for c in table.columns if c != S.ID], errors="ignore")
    merged = kept.merge(table, on=S.ID, how="left")
    provenance = {"bvse_top": top, "bvse_rows": len(table), "bvse_failures": len(failures)}
    out = batch.write_screen_outputs(cfg, merged, failures, provenance, stage="verify")
    cfg.run.write_section("bvse", bvse_section(out, top), order=62)
    report_stage(cfg)
    return out
