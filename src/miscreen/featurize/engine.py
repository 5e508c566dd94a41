"""Run featurizer groups over a records table: cached, chunked, parallel, streamed.

Work is split into chunks of records; chunks run on a joblib (loky) pool of ``jobs``
processes, never every core by default (explicit ``jobs``, else ``SLURM_CPUS_PER_TASK``,
else 1). Each structure runs under a wall-clock limit; any error or timeout puts that row
in the failures table with its reason and the chunk carries on. Results stream out chunk
by chunk (to a caller's sink, e.g. a Parquet writer), and computed groups go to the cache.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from pymatgen.core import Composition, Element

from miscreen.featurize import presets
from miscreen.featurize.base import Entry
from miscreen.featurize.cache import FeatureCache, fingerprint
from miscreen.featurize.time_limit import StructureTimeout, time_limit
from miscreen.fetch.parsing import MAX_AMOUNT, check_cell
from miscreen.progress import Progress
from miscreen.schema import (
    COMPOSITION,
    FAILURE_COLUMNS,
    ID,
    LATTICE,
    SOURCE,
    SPACEGROUP,
    STRUCTURE,
    Z,
    as_float,
    failure,
)

TIME_LIMIT_S = 60.0
CHUNK_SIZE = 64


@dataclass
class Task:
    """One record to featurize, with the groups still missing from the cache."""

    id: str
    source: str
    composition: str
    structure: str | None
    spacegroup: float
    lattice: tuple[float, ...]
    z: float
    fp: str
    needed: tuple[str, ...]
    pos: int = 0


@dataclass
class Outcome:
    """A task's computed group values, or the reason it failed, plus diagnostics."""

    id: str
    values: dict[str, list[float]] = field(default_factory=dict)
    reason: str | None = None
    stage: str = "featurize"
    info: dict[str, Any] = field(default_factory=dict)


def resolve_jobs(jobs: int | None = None) -> int:
    """Worker count: ``jobs``, else ``SLURM_CPUS_PER_TASK``, else 1; capped by usable CPUs."""
    if jobs is not None:
        if int(jobs) < 1:
            raise ValueError(f"jobs must be >= 1, got {jobs}")
        wanted = int(jobs)
    elif os.environ.get("SLURM_CPUS_PER_TASK"):
        raw = os.environ["SLURM_CPUS_PER_TASK"]
        try:
            wanted = int(raw)
        except ValueError as exc:
            raise ValueError(f"SLURM_CPUS_PER_TASK={raw!r} is not an integer") from exc
        wanted = max(wanted, 1)
    else:
        wanted = 1
    return max(1, min(wanted, _usable_cpus()))


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def run_task(task: Task, limit: float | None) -> Outcome:
    """Compute the task's missing groups; every failure becomes a reason, never a raise."""
    out = Outcome(task.id)
    start = time.perf_counter()
    group = "parse"
    try:
        with time_limit(limit), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            entry = _entry(task)
            for group in task.needed:
                f = presets.featurizer(group)
                if f.needs_structure and not task.structure:
                    continue
                values = f.featurize(entry)
                if len(values) != len(presets.labels(group)):
                    raise RuntimeError(f"{group} returned {len(values)} values")
                out.values[group] = [float(v) for v in values]
            if "oxidation" in entry.__dict__ or "context" in entry.__dict__:
                out.info["oxidation_method"] = entry.oxidation.method
            if "context" in entry.__dict__ and entry.context is not None:
                # only when a group built it: building it for this line alone (a neighbour
                # list and an oxidation guess) cost a fifth of the composition preset's time
                out.info["n_sites"] = entry.context.n_sites
    except StructureTimeout as exc:
        out.values, out.reason = {}, f"{group}: {exc}"
    except Exception as exc:  # one bad structure must not stop the chunk
        out.values, out.reason = {}, f"{group}: {type(exc).__name__}: {exc}"
    out.info["seconds"] = time.perf_counter() - start
    out.info["computed"] = sorted(out.values)
    return out


def run_chunk(tasks: list[Task], limit: float | None) -> list[Outcome]:
    """Featurize a chunk of tasks (the unit of work sent to a joblib worker)."""
    return [run_task(t, limit) for t in tasks]


def _entry(task: Task) -> Entry:
    """Parse a task into an :class:`Entry`, refusing structures too large to be sensible."""
    try:
        comp = Composition(task.composition)
    except Exception as exc:
        raise ValueError(f"unparsable composition {task.composition!r}: {exc}") from exc
    if comp.num_atoms <= 0:
        raise ValueError(f"composition {task.composition!r} has no atoms")
    unknown = [str(el) for el in comp.elements if not Element.is_valid_symbol(str(el))]
    if unknown:
        raise ValueError(f"unparsable composition {task.composition!r}: unknown {unknown}")
    amounts = list(comp.values())
    if not all(math.isfinite(a) and 0 < a <= MAX_AMOUNT for a in amounts):
        raise ValueError(f"composition {task.composition!r} has absurd or non-finite amounts")
    entry = Entry(comp, task.structure, task.spacegroup, task.lattice, task.z)
    if entry.structure is not None:
        # sites, finite cell, volume and cell span per site: the neighbour search's memory
        # grows with the cell's span, so an absurd cell is refused before it is built
        check_cell(entry.structure)
    return entry


def make_tasks(records: pd.DataFrame) -> list[Task]:
    """One task per record row (all groups still to decide)."""
    out = []
    cols = {
        c: records[c].tolist() if c in records.columns else [None] * len(records)
        for c in (ID, SOURCE, COMPOSITION, STRUCTURE, SPACEGROUP, *LATTICE, Z)
    }
    for i in range(len(records)):
        raw = cols[STRUCTURE][i]
        structure = raw if isinstance(raw, str) and raw else None
        comp = str(cols[COMPOSITION][i]) if cols[COMPOSITION][i] is not None else ""
        spg, z = as_float(cols[SPACEGROUP][i]), as_float(cols[Z][i])
        lattice = tuple(as_float(cols[k][i]) for k in LATTICE)
        out.append(
            Task(
                id=str(cols[ID][i]),
                source=str(cols[SOURCE][i]),
                composition=comp,
                structure=structure,
                spacegroup=spg,
                lattice=lattice,
                z=z,
                fp=fingerprint(comp, structure, spg, lattice, z),
                needed=(),
                pos=i,
            )
        )
    return out


Sink = Callable[[pd.DataFrame, pd.DataFrame, pd.DataFrame], None]


def run(
    records: pd.DataFrame,
    preset: str,
    sink: Sink,
    *,
    jobs: int | None = None,
    cache_dir: Path | None = None,
    chunk_size: int = CHUNK_SIZE,
    limit: float | None = TIME_LIMIT_S,
) -> presets.FeatureSchema:
    """Featurize ``records`` block by block, handing each block's (features, failures,
    info) to ``sink``; returns the schema."""
    schema = presets.feature_schema(preset)
    groups = presets.groups(preset)
    n_jobs = resolve_jobs(jobs)
    cache = FeatureCache(Path(cache_dir)) if cache_dir is not None else None
    block = max(chunk_size * n_jobs * 2, chunk_size)
    parallel = Parallel(n_jobs=n_jobs, backend="loky") if n_jobs > 1 else None
    try:
        with Progress(f"featurize {preset}", len(records), "rows") as progress:
            for start in range(0, len(records), block):
                part = records.iloc[start : start + block]
                feats, fails, info = _run_block(
                    part, groups, schema, cache, parallel, chunk_size, limit
                )
                sink(feats, fails, info)
                computed = int((info["computed"] != "").sum())
                progress.advance(len(part), len(fails), note=f"{computed} computed, rest cached")
    finally:
        if cache is not None:
            cache.close()
    return schema


def _run_block(
    part: pd.DataFrame,
    groups: tuple[str, ...],
    schema: presets.FeatureSchema,
    cache: FeatureCache | None,
    parallel: Parallel | None,
    chunk_size: int,
    limit: float | None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Featurize one block: cache look-up, parallel compute, cache write, assembly."""
    tasks = make_tasks(part)
    versions = {g: presets.featurizer(g).version for g in groups}
    cached: dict[str, dict[str, tuple[np.ndarray, dict]]] = {}
    if cache is not None:
        fps = [t.fp for t in tasks]
        cached = {g: cache.get_many(fps, g, versions[g]) for g in groups}
    for t in tasks:
        t.needed = tuple(
            g
            for g in groups
            if t.fp not in cached.get(g, {})
            and (t.structure or not presets.featurizer(g).needs_structure)
        )
    todo = [t for t in tasks if t.needed]
    chunks = [todo[i : i + chunk_size] for i in range(0, len(todo), chunk_size)]
    if parallel is not None and len(chunks) > 1:
        results = parallel(delayed(run_chunk)(c, limit) for c in chunks)
    else:
        results = [run_chunk(c, limit) for c in chunks]
    flat = [o for chunk in results for o in chunk]
    outcomes = {t.pos: o for t, o in zip(todo, flat, strict=True)}
    if cache is not None:
        cache.put_many(
            [
                (t.fp, g, versions[g], np.asarray(v), outcomes[t.pos].info)
                for t in todo
                if outcomes[t.pos].reason is None
                for g, v in outcomes[t.pos].values.items()
            ]
        )
    return _assemble(tasks, groups, schema, cached, outcomes)


def _assemble(
    tasks: list[Task],
    groups: tuple[str, ...],
    schema: presets.FeatureSchema,
    cached: dict[str, dict[str, tuple[np.ndarray, dict]]],
    outcomes: dict[int, Outcome],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Rows in schema order (NaN for structure groups of structure-less rows), failures, info."""
    rows, ids, fails, info = [], [], [], []
    for t in tasks:
        out = outcomes.get(t.pos)
        if out is not None and out.reason is not None:
            fails.append(failure(t.id, t.source, out.stage, out.reason))
            continue
        parts, meta = [], dict(out.info) if out is not None else {}
        for g in groups:
            if out is not None and g in out.values:
                parts.append(np.asarray(out.values[g], dtype=float))
            elif t.fp in cached.get(g, {}):
                vals, m = cached[g][t.fp]
                parts.append(vals)
                meta.setdefault("oxidation_method", m.get("oxidation_method"))
            else:
                parts.append(np.full(len(presets.labels(g)), np.nan))
        rows.append(np.concatenate(parts))
        ids.append(t.id)
        info.append(
            {
                ID: t.id,
                "fingerprint": t.fp,
                "has_structure": bool(t.structure),
                "oxidation_method": meta.get("oxidation_method") or "",
                "computed": ",".join(meta.get("computed", [])),
                "seconds": float(meta.get("seconds", 0.0)),
            }
        )
    feats = pd.DataFrame(
        np.vstack(rows) if rows else np.empty((0, len(schema.names))),
        index=pd.Index(ids, name=ID),
        columns=list(schema.names),
    )
    failures = pd.DataFrame(fails, columns=list(FAILURE_COLUMNS))
    info_cols = [ID, "fingerprint", "has_structure", "oxidation_method", "computed", "seconds"]
    return feats, failures, pd.DataFrame(info, columns=info_cols)
