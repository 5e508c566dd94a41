"""Wiring of ``miscreen screen`` and ``miscreen merge``: the whole pool, or one shard of it,
through the batch path; and the ranked candidates as a terminal shows them."""

from __future__ import annotations

import math

import pandas as pd

from miscreen import atomic_io, batch
from miscreen import schema as S
from miscreen.batch import ShardResult, ShardSpec
from miscreen.config import Config
from miscreen.pipeline.stages import screen_stage


def with_chunk_size(cfg: Config, chunk_size: int | None) -> Config:
    """``cfg`` with ``batch.chunk_size`` set to ``chunk_size`` (unchanged when None)."""
    if chunk_size is None:
        return cfg
    return cfg.model_copy(update={"batch": cfg.batch.model_copy(update={"chunk_size": chunk_size})})


def shard_to_screen(text: str | None) -> ShardSpec | None:
    """The shard named by ``--shard INDEX/COUNT``, else the SLURM array task's shard, else
    None (the whole pool); ``ValueError`` for a malformed or out-of-range shard."""
    return batch.parse_shard(text) if text else batch.shard_from_env()


def screen_pool(
    cfg: Config,
    shard: ShardSpec | None,
    backend: str | None = None,
    scheduler: str | None = None,
) -> pd.DataFrame | ShardResult:
    """Screen ``shard`` (its result; ``miscreen merge`` ranks later) or, when None, the whole
    pool followed by the merge (the ranked candidates)."""
    if shard is None:
        return screen_stage(cfg, backend, scheduler)
    with batch.backend_for(cfg, backend, scheduler) as executor:  # type: ignore[arg-type]
        return batch.screen_shard(cfg, shard, executor)


def ranked_count(ranked: pd.DataFrame) -> str:
    """``ranked R of N candidates``."""
    return f"ranked {int(ranked[S.RANK].notna().sum())} of {len(ranked)} candidates"


def run_top_lines(cfg: Config, k: int) -> list[str]:
    """The run's first ``k`` ranked candidates for a terminal (see :func:`top_lines`)."""
    return top_lines(atomic_io.read_table(cfg.run.candidates_parquet), k)


def top_lines(ranked: pd.DataFrame, k: int) -> list[str]:
    """The first ``k`` ranked candidates for a terminal: formula, source id, predicted
    conductivity in mS/cm with its interval, the chance of a fast conductor, and why (the
    score, stability, band gap and BVSE barrier, each with its method)."""
    top = ranked[ranked[S.RANK].notna()].head(k)
    lines = [f"Top {len(top)} of {int(ranked[S.RANK].notna().sum())} ranked candidates "
             f"({len(ranked)} screened):"]  # fmt: skip
    for row in top.to_dict("records"):
        sigma, lo, hi = (1e3 * 10 ** row[c] for c in (S.PRED, S.LOWER, S.UPPER))
        p_fast = S.as_float(row.get(S.P_FAST))
        chance = f"  P(fast) {p_fast:.2f}" if math.isfinite(p_fast) else ""
        lines.append(
            f"{int(row[S.RANK]):3d}. {row[S.FORMULA]:<14} {row[S.ID]:<12} "
            f"{sigma:.3g} mS/cm [{lo:.2g}, {hi:.2g}]{chance}"
        )
        lines.append(f"     {row[S.WHY]}")
    return lines
