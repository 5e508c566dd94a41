"""Screen one shard chunk by chunk with checkpoints, and merge finished shards into the
outputs an unsharded run writes.

Layout under ``results/<run>/shards/``::

    shard-0003-of-0010.parts/chunk-000012.parquet  predictions of one chunk (checkpoint)
    shard-0003-of-0010.parts/chunk-000012.failures.parquet
    shard-0003-of-0010.parquet            the shard's predictions (no structures)
    shard-0003-of-0010.failures.parquet   the shard's load and featurize failures
    shard-0003-of-0010.json               written last: the shard is finished

A shard whose ``.json`` carries the current run key (config, models, inputs, chunk size)
is done and is skipped; a killed shard resumes from its chunk checkpoints; a shard made
with other inputs or models is redone. Ranking is global, so only ``merge`` ranks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from miscreen import atomic_io
from miscreen import schema as S
from miscreen.batch.backends import Backend, ChunkTask, Predictor, predict_chunk
from miscreen.batch.chunks import ShardPlan, fingerprint, iter_chunks, plan_shard
from miscreen.batch.shards import ShardSpec
from miscreen.batch.top_checks import check_top
from miscreen.catalog import RunCatalog, ShardFiles, unique_inputs
from miscreen.config import Config
from miscreen.progress import Progress
from miscreen.screen import Filters, rank_candidates
from miscreen.train.routing import model_digests

log = logging.getLogger(__name__)


class ShardError(RuntimeError):
    """Shards that cannot be merged; the message names them and the command to run."""


@dataclass(frozen=True)
class ShardResult:
    """A finished shard: rows predicted, failures, and whether this call did the work."""

    shard: ShardSpec
    rows: int
    failures: int
    skipped: bool


def shard_dir(cfg: Config) -> Path:
    return cfg.run.shards


def shard_paths(cfg: Config, shard: ShardSpec) -> ShardFiles:
    """The files of one shard, as the run catalog names them (see the module docstring)."""
    return cfg.run.shard(shard.index, shard.count)


def model_digest(cfg: Config) -> dict[str, str]:
    """sha256 of the model serving each row kind, as ``model.json`` records it (workers
    verify the files against it when they load them)."""
    return model_digests(cfg.models)


def run_key(cfg: Config, shard_count: int, models: dict[str, str], inputs: list[dict]) -> str:
    """What makes shard outputs valid: candidates, inputs, models, interval, chunk cut."""
    blob = {
        "candidates": [c.model_dump(mode="json") for c in cfg.candidates],
        "inputs": inputs,
        "models": models,
        "interval": cfg.model.interval,
        "fast_log10_sigma": cfg.screen.fast_log10_sigma,
        "chunk_size": cfg.batch.chunk_size,
        "shards": shard_count,
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()


def _todo(
    plan: ShardPlan, chunk_size: int, files: ShardFiles, progress: Progress
) -> Iterator[ChunkTask]:
    """Chunks still to screen; checkpointed ones are counted and skipped."""
    for k, pieces in enumerate(iter_chunks(plan, chunk_size)):
        table, fails = files.chunk(k)
        if table.exists() and fails.exists():
            rows = min(chunk_size, plan.total - k * chunk_size)
            note = "resumed from checkpoint"
            progress.advance(rows, len(atomic_io.read_table(fails)), resumed=True, note=note)
            continue
        yield ChunkTask(k, pieces, plan.columns, table, fails)


def screen_shard(cfg: Config, shard: ShardSpec, backend: Backend) -> ShardResult:
    """Predict every candidate the shard owns, checkpointing each chunk; idempotent."""
    paths = shard_paths(cfg, shard)
    models = model_digest(cfg)
    key = run_key(cfg, shard.count, models, fingerprint(cfg))
    if paths.done.exists():
        state = atomic_io.read_json(paths.done)
        if state.get("key") == key:
            log.info("shard %s is already finished (%s); nothing to do", shard, paths.done)
            return ShardResult(shard, state["rows"], state["failures"], skipped=True)
        log.warning("shard %s was made from other inputs or models: redoing it", shard)
    _reset_if_stale(paths, key)
    plan = plan_shard(cfg, shard)
    chunk_size = cfg.batch.chunk_size
    n_chunks = -(-plan.total // chunk_size)
    with Progress(f"screen shard {shard}", plan.total, "rows") as progress:
        for done in backend.map(_todo(plan, chunk_size, paths, progress)):
            _check_visible(paths, done.k)
            progress.advance(
                done.rows, done.failures, note=f"{progress.steps + 1}/{n_chunks} chunks"
            )
    return _finish_shard(cfg, shard, plan, key, models, n_chunks)


def _check_visible(files: ShardFiles, k: int) -> None:
    """A chunk's checkpoint, written by whoever screened it, must be visible here."""
    missing = [p for p in files.chunk(k) if not p.exists()]
    if missing:
        raise ShardError(
            f"chunk {k} was screened but its checkpoint {missing[0]} is not visible here: the "
            "workers write checkpoints into the results folder themselves, so it must be on a "
            "filesystem the client and all workers share, at the same path (results_dir)"
        )


def _reset_if_stale(paths: ShardFiles, key: str) -> None:
    """Drop checkpoints and outputs written under another run key; record the current key."""
    parts, marker = paths.parts, paths.key
    if parts.exists() and (not marker.exists() or marker.read_text().strip() != key):
        shutil.rmtree(parts)
    for path in (paths.done, paths.table, paths.failures):
        path.unlink(missing_ok=True)
    parts.mkdir(parents=True, exist_ok=True)
    if not marker.exists():
        atomic_io.write_text(marker, key + "\n")


def _finish_shard(
    cfg: Config, shard: ShardSpec, plan: ShardPlan, key: str, models: dict, n_chunks: int
) -> ShardResult:
    """Join the chunk checkpoints into the shard's table; the ``.json`` goes last."""
    paths = shard_paths(cfg, shard)
    tables, fails = [], [plan.failures]
    for k in range(n_chunks):
        table, failures = paths.chunk(k)
        tables.append(atomic_io.read_table(table))
        fails.append(atomic_io.read_table(failures))
    predicted = _concat(tables)
    failures = _concat(fails) if any(len(f) for f in fails) else S.empty_failures()
    atomic_io.write_table(predicted, paths.table)
    atomic_io.write_table(failures.reset_index(drop=True), paths.failures)
    state = {
        "shard": str(shard),
        "index": shard.index,
        "count": shard.count,
        "key": key,
        "rows": len(predicted),
        "failures": len(failures),
        "chunks": n_chunks,
        "chunk_size": cfg.batch.chunk_size,
        "columns": plan.columns,
        "inputs": plan.inputs,
        "model_sha256": models,
        "finished_at": atomic_io.now_utc(),
    }
    atomic_io.write_json(paths.done, state)
    shutil.rmtree(paths.parts, ignore_errors=True)
    log.info("shard %s: %d candidates predicted, %d failures", shard, len(predicted), len(failures))
    return ShardResult(shard, len(predicted), len(failures), skipped=False)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f.columns)]
    nonempty = [f for f in frames if len(f)] or frames[:1]
    return pd.concat(nonempty, ignore_index=True) if nonempty else pd.DataFrame()


def finished_shards(cfg: Config, count: int | None = None) -> list[dict]:
    """The states of a complete set of finished shards that match the current run.

    Raises :class:`ShardError` naming the missing or stale shards and what to run.
    """
    states = [atomic_io.read_json(p) for p in cfg.run.finished_shards()]
    counts = sorted({s["count"] for s in states} if count is None else {count})
    if not counts:
        raise ShardError(
            f"no finished shards in {shard_dir(cfg)}: run `miscreen screen CONFIG --shard i/N` "
            f"for every i (or `miscreen slurm submit CONFIG`) first"
        )
    plan_inputs = fingerprint(cfg)
    models = model_digest(cfg)
    problems = []
    for n in counts:
        key = run_key(cfg, n, models, plan_inputs)
        good = {s["index"]: s for s in states if s["count"] == n and s["key"] == key}
        missing = [i for i in range(n) if i not in good]
        if not missing:
            return [good[i] for i in range(n)]
        stale = [s["index"] for s in states if s["count"] == n and s["key"] != key]
        problems.append(
            f"{n} shards: missing {_span(missing)}"
            + (f" (shards {_span(stale)} were made from other inputs or models)" if stale else "")
        )
    raise ShardError(
        f"cannot merge {shard_dir(cfg)}: "
        + "; ".join(problems)
        + ". Run `miscreen screen CONFIG --shard i/N` for each missing i, then merge again"
    )


def _span(ids: list[int]) -> str:
    return ", ".join(map(str, ids[:10])) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")


def merge_shards(cfg: Config, count: int | None = None) -> pd.DataFrame:
    """Rank the shards' predictions together and write what ``screen_stage`` writes."""
    states = finished_shards(cfg, count)
    tables, failures = [], []
    for state in states:
        paths = shard_paths(cfg, ShardSpec(state["index"], state["count"]))
        tables.append(atomic_io.read_table(paths.table))
        failures.append(atomic_io.read_table(paths.failures))
    checks = check_top(cfg, _concat(tables), lambda table: rank_screened(cfg, table))
    return write_screen_outputs(
        cfg,
        checks.table,
        pd.concat([*failures, checks.failures], ignore_index=True),
        {
            "inputs": unique_inputs(states[0]["inputs"]),
            "model_sha256": states[0]["model_sha256"],
            "shards": len(states),
            "chunk_size": states[0]["chunk_size"],
            "top_checks": checks.provenance,
        },
    )


def rank_screened(cfg: Config, predicted: pd.DataFrame) -> pd.DataFrame:
    """Rank predicted candidates the one way every screen ranks them (``miscreen run``,
    ``merge``, ``verify bvse``, the case studies): the run's filters (the known-material
    exclusion included), score and weights; the columns of ``candidates.csv``, without
    structures."""
    ranked = rank_candidates(
        predicted,
        Filters.from_config(cfg.screen),
        cfg.screen.score,
        cfg.screen.supply_risk_weight,
        cfg.screen.barrier_weight,
        cfg.screen.barrier_reference,
        cfg.model.interval,
    )
    lead = [S.RANK, S.ID, S.SOURCE, S.FORMULA, S.PRED, S.UNCERTAINTY]
    columns = lead + [c for c in ranked.columns if c not in lead and c != S.STRUCTURE]
    return ranked[columns]


def screen_records(
    cfg: Config, records: pd.DataFrame, predictor: Predictor | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Predict and rank records already in memory as the batch path does (one chunk's
    prediction, criteria and known-material matches, then :func:`rank_screened`) ->
    (ranked, failures); writes nothing. ``predictor`` defaults to the run's. The checks of
    the best rows that the merge adds (:mod:`miscreen.batch.top_checks`: band-gap and
    stability estimates, BVSE) are not run: filters use the values the records carry."""
    predicted, failures = predict_chunk(predictor or Predictor.from_config(cfg), records)
    return rank_screened(cfg, predicted), failures


def write_screen_outputs(
    cfg: Config,
    predicted: pd.DataFrame,
    failures: pd.DataFrame,
    provenance: dict,
    stage: str = "screen",
) -> pd.DataFrame:
    """Rank predictions globally and write candidates.csv/.parquet, failures and manifest:
    the one place ranked candidates are written (by the screen merge, and again when the
    verify stage adds barriers)."""
    ranked = rank_screened(cfg, predicted)
    write_candidates(cfg.run, ranked)
    cfg.run.write_failures(stage, failures)
    entry = {
        **provenance,
        "candidates": len(ranked),
        "ranked": int(ranked[S.RANK].notna().sum()),
        "folders": cfg.folders(),
    }
    cfg.run.update_manifest(cfg.model_dump(mode="json"), cfg.seed, stage, entry)
    return ranked


def write_candidates(run: RunCatalog, ranked: pd.DataFrame) -> None:
    """The ranked table as ``candidates.csv`` and ``candidates.parquet``."""
    atomic_io.write_table(ranked, run.candidates_csv)
    atomic_io.write_table(ranked, run.candidates_parquet)
