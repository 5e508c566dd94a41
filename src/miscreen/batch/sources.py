"""Candidate sources read in batches, deduplicated and cut down to one shard's rows.

A structure store (``kind: store``) streams from its Parquet table in batches, so a pool of
any size never sits in memory; the other sources are small by nature and load whole through
``pipeline.load_source``. A cheap first pass over the ids decides which rows the shard owns
(first source wins for a repeated id, as in an unsharded run) and how many there are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from miscreen import pipeline
from miscreen import schema as S
from miscreen.batch.shards import ShardSpec, shard_mask
from miscreen.config import (
    CandidateSource,
    CifDirSource,
    Config,
    CsvSource,
    JsonlSource,
    StoreSource,
)
from miscreen.store.structures import STRUCTURES, read_store

log = logging.getLogger(__name__)


@dataclass
class SourceStream:
    """One candidate source: its columns, ids, a batch reader, load failures and inputs."""

    columns: list[str]
    ids: list[str]
    batches: Callable[[int], Iterator[pd.DataFrame]]
    failures: pd.DataFrame
    inputs: list[dict]


@dataclass
class ShardPlan:
    """What a shard screens: per source a mask of its rows, the column order, the total."""

    shard: ShardSpec
    streams: list[SourceStream]
    keep: list[np.ndarray]
    columns: list[str]
    failures: pd.DataFrame
    inputs: list[dict]
    total: int


def store_table(path: Path) -> Path:
    """The Parquet table of a structure store folder (or the file itself)."""
    path = Path(path)
    table = path / STRUCTURES if path.is_dir() else path
    if not table.exists():
        read_store(path)  # raises the store's own error, which says how to create or resume it
    return table


def open_store(source: StoreSource) -> SourceStream:
    """Stream a structure store's table in row batches (never the whole table at once)."""
    import pyarrow.parquet as pq

    table = store_table(source.path)
    names = pq.read_schema(table).names
    columns = names + [c for c in S.RECORD_COLUMNS if c not in names]
    ids = pq.read_table(table, columns=[S.ID]).column(S.ID).to_pylist()

    def batches(size: int) -> Iterator[pd.DataFrame]:
        with pq.ParquetFile(table) as pf:
            for batch in pf.iter_batches(batch_size=size):
                yield S.ensure_record_columns(batch.to_pandas())

    inputs = [{"path": str(source.path)}]
    return SourceStream(columns, [str(i) for i in ids], batches, S.empty_failures(), inputs)


def open_loaded(source: CandidateSource) -> SourceStream:
    """A small source, loaded whole by the pipeline and sliced into batches."""
    loaded = pipeline.load_source(source)
    records = loaded.records

    def batches(size: int) -> Iterator[pd.DataFrame]:
        for start in range(0, len(records), size):
            yield records.iloc[start : start + size]

    return SourceStream(
        list(records.columns),
        [str(i) for i in records[S.ID]],
        batches,
        loaded.failures,
        loaded.inputs,
    )


def open_source(source: CandidateSource) -> SourceStream:
    """Open one configured candidate source for batch reading."""
    return open_store(source) if isinstance(source, StoreSource) else open_loaded(source)


def _stat(path: Path) -> dict:
    """Path, size and modification time: enough to notice a changed input file."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        return {"path": str(path.resolve()), "files": [_stat(p) for p in files]}
    if not path.exists():
        return {"path": str(path), "missing": True}
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def fingerprint(cfg: Config) -> list[dict]:
    """The candidate input files' identities, without reading them (part of the run key)."""
    out = []
    for source in cfg.candidates:
        if isinstance(source, StoreSource):
            out.append(_stat(store_table(source.path)))
        elif isinstance(source, CsvSource | CifDirSource):
            out.append(_stat(source.path))
        elif isinstance(source, JsonlSource) and source.path is not None:
            out.append(_stat(source.path))
        else:  # registered datasets and bundled files: verified by sha256 when fetched
            out.append({"kind": source.kind})
    return out


def plan_shard(cfg: Config, shard: ShardSpec) -> ShardPlan:
    """Open every source and decide which rows this shard screens."""
    streams = [open_source(s) for s in cfg.candidates]
    seen: set[str] = set()
    keep, columns, failures, dropped = [], [], [], 0
    for stream in streams:
        first = np.zeros(len(stream.ids), dtype=bool)
        for pos, id_ in enumerate(stream.ids):
            if id_ not in seen:
                seen.add(id_)
                first[pos] = True
        dropped += int((~first).sum())
        keep.append(first & shard_mask(stream.ids, shard))
        columns += [c for c in stream.columns if c not in columns]
        fails = stream.failures
        if not fails.empty:
            failures.append(fails[shard_mask(fails[S.ID].astype(str).tolist(), shard)])
    if dropped:
        log.warning("dropping %d candidates whose id appeared in an earlier source", dropped)
    return ShardPlan(
        shard=shard,
        streams=streams,
        keep=keep,
        columns=columns,
        failures=pd.concat(failures, ignore_index=True) if failures else S.empty_failures(),
        inputs=[e for s in streams for e in s.inputs],
        total=int(sum(int(k.sum()) for k in keep)),
    )


def iter_chunks(plan: ShardPlan, chunk_size: int) -> Iterator[pd.DataFrame]:
    """The shard's rows in chunks of ``chunk_size`` (the last may be smaller), in source order.

    Chunk boundaries depend only on the plan and the chunk size, so a resumed run cuts the
    same chunks as the killed one.
    """
    buffer: list[pd.DataFrame] = []
    held = 0
    for stream, keep in zip(plan.streams, plan.keep, strict=True):
        offset = 0
        for batch in stream.batches(chunk_size):
            mask = keep[offset : offset + len(batch)]
            offset += len(batch)
            if mask.any():
                buffer.append(batch.loc[mask].reindex(columns=plan.columns))
                held += int(mask.sum())
            while held >= chunk_size:
                merged = pd.concat(buffer, ignore_index=True)
                yield merged.iloc[:chunk_size].reset_index(drop=True)
                rest = merged.iloc[chunk_size:]
                buffer, held = ([rest] if len(rest) else []), len(rest)
    if held:
        yield pd.concat(buffer, ignore_index=True)
