"""Sharded, chunked, resumable screening for pools of any size, locally, in SLURM job
arrays, or on a Dask cluster. The science stays in ``pipeline``/``screen``; this package
only cuts the pool into shards and chunks, checkpoints them and merges the results. It is
the one screening path: ``miscreen run`` screens through :func:`screen_all` too.

- :func:`screen_shard`: predict one shard (``i/N``) chunk by chunk; idempotent.
- :func:`merge_shards`: rank every shard's predictions together into ``candidates.csv``.
- :func:`screen_all`: one shard of one, then merge (an unsharded run that streams).
- :func:`rank_screened`: the one ranking every screen uses (filters, score, columns);
  :func:`screen_records` predicts and ranks rows already in memory the same way (the case
  studies' pools).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import pandas as pd

from miscreen.batch.backends import (
    Backend,
    DaskBackend,
    LocalBackend,
    Predictor,
    dask_client,
    predict_chunk,
)
from miscreen.batch.run import (
    ShardError,
    ShardResult,
    finished_shards,
    merge_shards,
    rank_screened,
    screen_records,
    screen_shard,
    write_candidates,
    write_screen_outputs,
)
from miscreen.batch.shards import ShardSpec, parse_shard, shard_from_env, shard_of
from miscreen.config import Config

__all__ = [
    "Backend",
    "DaskBackend",
    "LocalBackend",
    "Predictor",
    "ShardError",
    "ShardResult",
    "ShardSpec",
    "backend_for",
    "finished_shards",
    "merge_shards",
    "parse_shard",
    "predict_chunk",
    "rank_screened",
    "screen_all",
    "screen_records",
    "screen_shard",
    "shard_from_env",
    "shard_of",
    "write_candidates",
    "write_screen_outputs",
]

BackendName = Literal["local", "dask"]


@contextmanager
def backend_for(
    cfg: Config, name: BackendName | None = None, scheduler: str | None = None
) -> Iterator[Backend]:
    """The chunk executor: ``name`` (default ``batch.backend``); Dask clients are closed after."""
    name = name or cfg.batch.backend
    predictor = Predictor.from_config(cfg)
    if name == "local":
        yield LocalBackend(predictor)
        return
    if name != "dask":
        raise ValueError(f"unknown backend {name!r}: use local or dask")
    with dask_client(cfg.batch.dask, scheduler) as client:
        yield DaskBackend(client, predictor, cfg.batch.dask.chunks_per_worker)


def screen_all(cfg: Config, backend: Backend) -> pd.DataFrame:
    """Screen the whole pool as one streamed shard and write the ranked outputs."""
    screen_shard(cfg, ShardSpec(0, 1), backend)
    return merge_shards(cfg, 1)
