"""Candidate sources, deduplicated and cut down to one shard's rows, then into chunks.

A cheap first pass over the ids decides which rows the shard owns (first source wins for a
repeated id, as in an unsharded run) and how many there are. A chunk is a list of pieces
that say where its rows are: for a structure store (``kind: store``) the row positions in
its Parquet table, read where the chunk is predicted (a Dask worker reads its own rows; a
pool of any size never sits in the client's memory); the other sources are small by nature,
load whole through ``fetch.sources.load_source`` and travel as the rows themselves.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

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
from miscreen.fetch.sources import first_seen, load_source
from miscreen.store.structures import STRUCTURES, read_store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreRows:
    """Rows of a structure store's Parquet table, by position; read only when needed."""

    path: str
    positions: np.ndarray  # increasing row positions in the table

    def read(self) -> pd.DataFrame:
        """Just these rows: only the row groups that hold them are read."""
        import pyarrow.parquet as pq

        if not Path(self.path).is_file():
            raise FileNotFoundError(
                f"structure store table {self.path} is not visible on {socket.gethostname()}: "
                "whoever screens a chunk (a Dask worker too) reads its rows from the store, so "
                "put the store on a filesystem the client and all workers share, at the same path"
            )
        with pq.ParquetFile(self.path) as pf:
            meta = pf.metadata
            sizes = np.array([meta.row_group(g).num_rows for g in range(meta.num_row_groups)])
            starts = np.concatenate([[0], np.cumsum(sizes)])
            group_of = np.searchsorted(starts, self.positions, side="right") - 1
            groups = np.unique(group_of)
            begins = np.concatenate([[0], np.cumsum(sizes[groups])[:-1]])  # in what is read
            local = self.positions - starts[group_of] + begins[np.searchsorted(groups, group_of)]
            table = pf.read_row_groups([int(g) for g in groups]).take(local)
        return S.ensure_record_columns(table.to_pandas())


Piece = StoreRows | pd.DataFrame


def read_chunk(pieces: list[Piece], columns: list[str]) -> pd.DataFrame:
    """A chunk's records in ``columns`` order, from its pieces (in source order)."""
    frames = [p.read() if isinstance(p, StoreRows) else p for p in pieces]
    return pd.concat([f.reindex(columns=columns) for f in frames], ignore_index=True)


@dataclass
class SourceStream:
    """One candidate source: its columns, ids, how to get rows, load failures and inputs."""

    columns: list[str]
    ids: list[str]
    piece: Callable[[np.ndarray], Piece]  # row positions -> where to read them
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
    """A structure store: only its ids are read here; rows are read chunk by chunk."""
    import pyarrow.parquet as pq

    table = store_table(source.path)
    names = pq.read_schema(table).names
    columns = names + [c for c in S.RECORD_COLUMNS if c not in names]
    ids = pq.read_table(table, columns=[S.ID]).column(S.ID).to_pylist()
    path = str(table.resolve())
    inputs = [{"path": str(source.path)}]
    return SourceStream(
        columns,
        [str(i) for i in ids],
        lambda positions: StoreRows(path, positions),
        S.empty_failures(),
        inputs,
    )


def open_loaded(source: CandidateSource, data_dir: Path | None = None) -> SourceStream:
    """A small source, loaded whole; its chunks carry their rows."""
    loaded = load_source(source, data_dir)
    records = loaded.records
    return SourceStream(
        list(records.columns),
        [str(i) for i in records[S.ID]],
        lambda positions: records.iloc[positions],
        loaded.failures,
        loaded.inputs,
    )


def open_source(source: CandidateSource, data_dir: Path | None = None) -> SourceStream:
    """Open one configured candidate source for batch reading."""
    if isinstance(source, StoreSource):
        return open_store(source)
    return open_loaded(source, data_dir)


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
    streams = [open_source(s, cfg.data_path) for s in cfg.candidates]
    seen: set[str] = set()
    keep, columns, failures, dropped = [], [], [], 0
    for stream in streams:
        first = first_seen(stream.ids, seen)
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


def iter_chunks(plan: ShardPlan, chunk_size: int) -> Iterator[list[Piece]]:
    """The shard's rows in chunks of ``chunk_size`` (the last may be smaller), in source
    order, each as the pieces to read it from (see :func:`read_chunk`).

    Chunk boundaries depend only on the plan and the chunk size, so a resumed run cuts the
    same chunks as the killed one.
    """
    owned = [np.flatnonzero(keep) for keep in plan.keep]
    stream_of = np.repeat(np.arange(len(owned)), [len(p) for p in owned])
    positions = np.concatenate(owned) if owned else np.zeros(0, dtype=int)
    for start in range(0, len(positions), chunk_size):
        streams = stream_of[start : start + chunk_size]
        rows = positions[start : start + chunk_size]
        yield [plan.streams[i].piece(rows[streams == i]) for i in np.unique(streams)]
