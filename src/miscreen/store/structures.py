"""The structure store: a folder of Parquet parts written page by page, a checkpoint, and a
consolidated table with a manifest.

Layout of ``STORE/``::

    parts/<slug>-<page>.parquet           records of one fetched page (atomic write)
    parts/<slug>-<page>.failures.parquet  bad records of that page, with a reason
    checkpoint.json                       per query: next cursor, next page, done
    structures.parquet                    all records, deduplicated, ``duplicate_of`` flagged
    failures.parquet                      all failures
    manifest.json                         queries, counts, API/database/package versions

A page's part is written before the checkpoint moves past it, and a part's name is fixed by
its page number, so a job killed at any point and run again rewrites at most the page it was
on: nothing is lost and nothing is stored twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from miscreen import schema as S
from miscreen.atomic_io import (
    base_manifest,
    file_entry,
    now_utc,
    read_json,
    read_table,
    write_json,
    write_table,
)
from miscreen.errors import UserError
from miscreen.store.structure_json import structure_from_json

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.json"
STRUCTURES = "structures.parquet"
FAILURES = "failures.parquet"
MANIFEST = "manifest.json"
PARTS = "parts"
PROVIDER = "provider"
FETCHED_AT = "fetched_at"
QUERY = "query"
PROPERTIES = "properties"
DUPLICATE_OF = "duplicate_of"
DUPLICATE_SOURCE = "duplicate_of_source"


class StoreError(UserError, RuntimeError):
    """A store that cannot be used as asked; the message says what to do."""


@dataclass(frozen=True)
class SourceQuery:
    """One query against one source: the unit of checkpointing.

    ``source`` goes into the records' ``source`` column (provider kind and URL); ``query``
    holds everything that changes the result (filter, page size, endpoint), never secrets.
    """

    source: str
    provider: str
    query: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        blob = json.dumps({"source": self.source, "query": self.query}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:10]

    @property
    def slug(self) -> str:
        host = re.sub(r"^[a-z]+:(//)?", "", self.source.split("://", 1)[-1])
        text = re.sub(r"[^A-Za-z0-9]+", "-", f"{self.provider}-{host}").strip("-").lower()
        return f"{text[:60]}-{self.key}"


@dataclass(frozen=True)
class ResumePoint:
    """Where a query continues: cursor and page index; ``done`` when nothing is left."""

    cursor: str | None
    index: int
    done: bool


class StructureStore:
    """A store folder; page writes and checkpoint updates are atomic and thread-safe."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.parts = self.root / PARTS
        self._lock = threading.Lock()

    # -- checkpoint ---------------------------------------------------------------------
    def checkpoint(self) -> dict[str, Any]:
        path = self.root / CHECKPOINT
        if not path.exists():
            return {"version": 1, "sources": {}}
        try:
            return read_json(path)
        except json.JSONDecodeError as exc:
            raise StoreError(
                f"{path} is not valid JSON ({exc}); delete the store folder {self.root} and fetch "
                f"again"
            ) from exc

    def resume_point(self, sq: SourceQuery, start: str) -> ResumePoint:
        """The cursor to continue ``sq`` from (``start`` for a query not seen before)."""
        state = self.checkpoint()["sources"].get(sq.slug)
        if state is None:
            return ResumePoint(start, 0, False)
        if state.get("done"):
            return ResumePoint(None, state["next_index"], True)
        log.info(
            "%s: resuming at page %d (%s) from %s",
            sq.source,
            state["next_index"],
            state["next_cursor"],
            self.root / CHECKPOINT,
        )
        return ResumePoint(state["next_cursor"], state["next_index"], False)

    def _update(self, sq: SourceQuery, **changes: Any) -> dict[str, Any]:
        with self._lock:
            cp = self.checkpoint()
            state = cp["sources"].setdefault(
                sq.slug,
                {
                    "source": sq.source,
                    PROVIDER: sq.provider,
                    QUERY: sq.query,
                    "started_at": now_utc(),
                    "next_cursor": None,
                    "next_index": 0,
                    "pages": 0,
                    "records": 0,
                    "failures": 0,
                    "done": False,
                    "stalled": None,
                    "meta": {},
                },
            )
            meta = changes.pop("meta", None)
            if meta:
                state["meta"].update(meta)
            state.update(changes, updated_at=now_utc())
            write_json(self.root / CHECKPOINT, cp)
            return state

    # -- writing ------------------------------------------------------------------------
    def write_page(
        self,
        sq: SourceQuery,
        index: int,
        records: pd.DataFrame,
        failures: pd.DataFrame,
        next_cursor: str | None,
        meta: dict[str, Any] | None = None,
        stalled: str | None = None,
    ) -> dict[str, Any]:
        """Write page ``index`` of ``sq`` (records and failures), then move the checkpoint."""
        stem = self.parts / f"{sq.slug}-{index:06d}"
        records = records.assign(
            **{PROVIDER: sq.provider, QUERY: json.dumps(sq.query), FETCHED_AT: now_utc()}
        )
        write_table(records, stem.with_suffix(".parquet"))
        write_table(failures, stem.with_suffix(".failures.parquet"))
        state = self.checkpoint()["sources"].get(sq.slug, {})
        counts = dict(state.get("page_counts", {}))
        counts[str(index)] = [len(records), len(failures)]
        return self._update(
            sq,
            next_cursor=next_cursor,
            next_index=index + 1,
            page_counts=counts,
            pages=len(counts),
            records=sum(c[0] for c in counts.values()),
            failures=sum(c[1] for c in counts.values()),
            done=next_cursor is None or stalled is not None,
            stalled=stalled,
            meta=meta or {},
        )

    def finalize(self, config: dict[str, Any] | None = None) -> dict[str, Any]:
        """Consolidate all parts into ``structures.parquet`` + ``failures.parquet`` + manifest."""
        for stale in self.parts.glob(".*.tmp"):  # left by a killed job's unfinished write
            stale.unlink(missing_ok=True)
        records = _read_parts(sorted(self.parts.glob("*.parquet")), failures=False)
        failures = _read_parts(sorted(self.parts.glob("*.failures.parquet")), failures=True)
        records = S.ensure_record_columns(records)
        before = len(records)
        records = records.drop_duplicates(subset=[S.SOURCE, S.ID], keep="first")
        records = records.sort_values([S.SOURCE, S.ID], kind="stable").reset_index(drop=True)
        records = flag_cross_source_duplicates(records)
        failures = failures.drop_duplicates(ignore_index=True)
        write_table(records, self.root / STRUCTURES)
        write_table(failures, self.root / FAILURES)
        cp = self.checkpoint()
        manifest = base_manifest(config=config)
        manifest.update(
            store=str(self.root),
            queries=list(cp["sources"].values()),
            counts={
                "records": len(records),
                "repeated_ids_dropped": before - len(records),
                "failures": len(failures),
                "cross_source_duplicates": int(records[DUPLICATE_OF].notna().sum()),
                "by_source": {str(k): int(v) for k, v in records[S.SOURCE].value_counts().items()},
            },
            outputs=[file_entry(self.root / STRUCTURES), file_entry(self.root / FAILURES)],
        )
        write_json(self.root / MANIFEST, manifest)
        log.info(
            "store %s: %d records, %d failures, %d cross-source duplicates",
            self.root,
            len(records),
            len(failures),
            manifest["counts"]["cross_source_duplicates"],
        )
        return manifest


def _read_parts(paths: list[Path], failures: bool) -> pd.DataFrame:
    frames = [read_table(p) for p in paths if p.name.endswith(".failures.parquet") == failures]
    frames = [f for f in frames if len(f)]
    if not frames:
        return S.empty_failures() if failures else pd.DataFrame(columns=list(S.RECORD_COLUMNS))
    return pd.concat(frames, ignore_index=True)


def _parse(structure_json: object, where: str) -> Any:
    """A pymatgen ``Structure`` from the store's JSON (read as data), or None if absent or
    unparsable (then a warning names ``where``, the record, since it is left out of
    duplicate matching)."""
    if not isinstance(structure_json, str):
        return None
    try:
        return structure_from_json(structure_json)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        log.warning(
            "%s: structure unreadable (%s: %s); not checked for cross-source duplicates",
            where,
            type(exc).__name__,
            exc,
        )
        return None


def flag_cross_source_duplicates(records: pd.DataFrame, vol_tol: float = 0.1) -> pd.DataFrame:
    """Set ``duplicate_of``/``duplicate_of_source`` on records that match (pymatgen
    ``StructureMatcher``) an earlier record of another source. Cheap prefilter first: same
    reduced formula, and volume per atom within ``vol_tol`` (relative)."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    out = records.copy()
    out[DUPLICATE_OF] = pd.Series([None] * len(out), dtype="object")
    out[DUPLICATE_SOURCE] = pd.Series([None] * len(out), dtype="object")
    if out.empty or out[S.SOURCE].nunique() < 2:
        return out
    groups: dict[str, list[int]] = {}
    for i, formula in out[S.FORMULA].items():
        if isinstance(formula, str) and isinstance(out.at[i, S.STRUCTURE], str):
            groups.setdefault(formula, []).append(int(i))
    matcher = StructureMatcher()
    for members in groups.values():
        if len({out.at[i, S.SOURCE] for i in members}) < 2:
            continue
        parsed = {
            i: _parse(out.at[i, S.STRUCTURE], f"record {out.at[i, S.ID]} ({out.at[i, S.SOURCE]})")
            for i in members
        }
        vpa = {i: st.volume / st.num_sites for i, st in parsed.items() if st is not None}
        originals: list[int] = []
        for i in vpa:
            for j in originals:
                if out.at[j, S.SOURCE] == out.at[i, S.SOURCE]:
                    continue
                if abs(vpa[i] - vpa[j]) > vol_tol * vpa[j]:
                    continue
                if matcher.fit(parsed[j], parsed[i]):
                    out.at[i, DUPLICATE_OF] = out.at[j, S.ID]
                    out.at[i, DUPLICATE_SOURCE] = out.at[j, S.SOURCE]
                    break
            else:
                originals.append(i)
    return out


def check_stored_structures(
    records: pd.DataFrame, source: str = "store"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``records`` whose structure (where given) reads as data, and a failure per record
    whose structure does not: a store written before structures were read as data may hold
    site properties that name a module to import, or JSON beyond the size limits."""
    bad: dict[int, str] = {}
    for i, text in records[S.STRUCTURE].items():
        if not isinstance(text, str):
            continue
        try:
            structure_from_json(text)
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            bad[i] = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError) else str(exc)
    if not bad:
        return records, S.empty_failures()
    failures = [
        S.failure(
            str(records.at[i, S.ID]),
            str(records.at[i, S.SOURCE]) or source,
            "load",
            f"{source}: stored structure refused: {why[:400]}",
        )
        for i, why in bad.items()
    ]
    log.warning(
        "%s: %d stored structure(s) refused (e.g. %s: %s); re-fetch the store",
        source,
        len(bad),
        failures[0][S.ID],
        failures[0]["reason"],
    )
    kept = records.drop(index=list(bad)).reset_index(drop=True)
    return kept, pd.DataFrame(failures, columns=list(S.FAILURE_COLUMNS))


def read_store(path: Path) -> pd.DataFrame:
    """The consolidated records of a store (``miscreen.schema.RECORD_COLUMNS`` and more)."""
    path = Path(path)
    table = path / STRUCTURES if path.is_dir() else path
    if not table.exists():
        hint = (
            "its fetch has not finished: re-run the same `miscreen fetch` command to resume"
            if (path / CHECKPOINT).exists()
            else "create it with `miscreen fetch mp|optimade|local --out STORE`"
        )
        raise FileNotFoundError(f"no structure store at {path} ({table} missing); {hint}")
    return S.ensure_record_columns(read_table(table))
