"""The tasks of a run's MD verification: prepare each candidate and write its task folders
(:func:`prepare_tasks`), then run them here with joblib (:func:`run_local`) or one per SLURM
array task (:func:`miscreen.verify.md_dynamics.run_md_task`).

The MD folder (given by the wiring, from the run catalog)::

    <candidate>/prepared.json      ordered supercell, ordering method, ML prediction
    <candidate>/relaxed.json       the relaxed cell every temperature starts from (the
                                   plan's potential; at the input's lattice, or relaxed)
    <candidate>/<T>K/              one task: task.json, checkpoint.json, frames-*.npz

The plan (:class:`Plan`) lists the task folders in array order; the wiring keeps it.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pymatgen.core import Structure

from miscreen import schema as S
from miscreen.errors import UserError
from miscreen.potentials import LEGACY_POTENTIAL, get_potential, set_threads
from miscreen.verify.md_cell import prepare
from miscreen.verify.md_dynamics import run_md_task
from miscreen.verify.md_protocol import MD_POTENTIAL, STAGE, MDError, MDProtocol
from miscreen.verify.md_tasks import (
    PREPARED_JSON,
    RELAXED,
    MDTask,
    check_cell,
    ensure_relaxed,
    read_prepared,
    task_progress,
    write_prepared,
    write_task,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MDCandidate:
    """A structure to simulate, with the ML prediction it is compared with (if any)."""

    id: str
    structure: Structure
    source: str = ""
    ml: tuple[float, float, float] | None = None  # predicted log10 sigma, lower, upper


def candidate_folder(candidate_id: str) -> str:
    """A folder name for an id: the id itself when it is safe, else a cleaned form with a
    short hash (so two ids never share a folder)."""
    clean = re.sub(r"[^A-Za-z0-9._-]+", "_", str(candidate_id)).strip("._") or "candidate"
    if clean == candidate_id:
        return clean
    return f"{clean[:60]}-{hashlib.sha1(str(candidate_id).encode()).hexdigest()[:6]}"


def temperature_folder(temperature_k: float) -> str:
    return f"{temperature_k:g}K"


@dataclass(frozen=True)
class Plan:
    """The tasks of a run's MD verification, in array order, with their potential and cell."""

    protocol: MDProtocol
    seed: int
    candidates: list[str]  # candidate folder names
    tasks: list[str]  # task folders relative to the md folder
    potential: str = LEGACY_POTENTIAL  # plans older than these fields: CHGNet, relaxed cell
    potential_version: str = ""
    cell: str = RELAXED

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol.to_dict(),
            "seed": self.seed,
            "candidates": self.candidates,
            "tasks": self.tasks,
            "potential": self.potential,
            "potential_version": self.potential_version,
            "cell": self.cell,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plan:
        return cls(
            MDProtocol.from_dict(d["protocol"]),
            int(d["seed"]),
            list(d["candidates"]),
            list(d["tasks"]),
            d.get("potential", LEGACY_POTENTIAL),
            d.get("potential_version", ""),
            d.get("cell", RELAXED),
        )

    def task_dir(self, md_dir: Path, index: int) -> Path:
        """The folder of task ``index`` (an array task's index) inside ``md_dir``."""
        if not 0 <= index < len(self.tasks):
            raise UserError(f"task {index} does not exist (the plan has {len(self.tasks)})")
        return Path(md_dir) / self.tasks[index]


def task_count(n_candidates: int, protocol: MDProtocol) -> int:
    return n_candidates * len(protocol.temperatures_k)


def prepare_tasks(
    md_dir: Path,
    candidates: list[MDCandidate],
    protocol: MDProtocol,
    seed: int = 0,
    potential: str = MD_POTENTIAL,
    cell: str = RELAXED,
) -> tuple[Plan, pd.DataFrame]:
    """Prepare every candidate (order, supercell) and write its task folders inside
    ``md_dir`` -> (plan, failures). A candidate that cannot be prepared is a failure with the
    reason; the rest go on. Preparing again keeps the tasks already there (a different
    protocol is that candidate's failure; a different potential or cell stops the plan with
    a :class:`~miscreen.verify.md_tasks.TaskMismatch` naming the folder)."""
    version = get_potential(potential).version
    check_cell(cell)
    root = Path(md_dir)
    folders, tasks, failures = [], [], []
    for cand in candidates:
        folder = candidate_folder(cand.id)
        cdir = root / folder
        try:
            if not (cdir / PREPARED_JSON).exists():
                t0 = time.perf_counter()
                prepared = prepare(cand.id, cand.structure, protocol, seed, cand.source, cand.ml)
                write_prepared(cdir, prepared)
                log.info(
                    "prepared %s: %s, %d atoms (%s), %.1f s",
                    cand.id,
                    prepared.formula,
                    len(prepared.structure),
                    prepared.ordering,
                    time.perf_counter() - t0,
                )
            own = []  # a candidate's tasks join the plan only when all of them are written
            for t in protocol.temperatures_k:
                task = MDTask(cand.id, t, protocol, seed, potential, version, cell)
                write_task(cdir / temperature_folder(t), task)
                own.append(f"{folder}/{temperature_folder(t)}")
        except (MDError, ValueError) as exc:
            failures.append(S.failure(cand.id, cand.source, STAGE, str(exc)))
            continue
        tasks += own
        folders.append(folder)
    return Plan(protocol, seed, folders, tasks, potential, version, cell), pd.DataFrame(
        failures, columns=list(S.FAILURE_COLUMNS)
    )


def _worker_logging() -> None:
    """Progress lines from joblib's worker processes (they start with no logging set up)."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            datefmt="%H:%M:%S",
        )


def _relax_one(cdir: Path, plan: Plan, device: str, threads: int) -> str | None:
    _worker_logging()
    try:
        set_threads(threads)
        ensure_relaxed(cdir, plan.protocol, device, plan.potential, plan.cell)
    except Exception as exc:  # one candidate's failure must not cost the others
        return f"relaxation failed: {type(exc).__name__}: {exc}"
    return None


def _run_one(tdir: Path, device: str, threads: int, time_limit_s: float | None) -> str | None:
    _worker_logging()
    try:
        run_md_task(tdir, device=device, threads=threads, time_limit_s=time_limit_s)
    except Exception as exc:
        return f"MD at {tdir.name} failed: {type(exc).__name__}: {exc}"
    return None


def run_local(
    md_dir: Path,
    plan: Plan,
    jobs: int = 1,
    threads: int = 1,
    device: str = "cpu",
    time_limit_s: float | None = None,
) -> pd.DataFrame:
    """Relax each candidate, then run every unfinished task, ``jobs`` at a time (joblib
    processes, ``threads`` torch threads each) -> failures (candidate, reason)."""
    from joblib import Parallel, delayed

    root = Path(md_dir)
    par = Parallel(n_jobs=jobs, backend="loky" if jobs > 1 else "sequential")
    cdirs = [root / c for c in plan.candidates]
    errors = par(delayed(_relax_one)(c, plan, device, threads) for c in cdirs)
    failed = {c.name: e for c, e in zip(cdirs, errors, strict=True) if e}
    todo = [
        root / t
        for t in plan.tasks
        if t.split("/")[0] not in failed and task_progress(root / t) < plan.protocol.total_steps
    ]
    log.info("MD: %d of %d tasks to run, %d at a time", len(todo), len(plan.tasks), jobs)
    errors = par(delayed(_run_one)(t, device, threads, time_limit_s) for t in todo)
    failed |= {t.parent.name: e for t, e in zip(todo, errors, strict=True) if e}
    rows = []
    for folder, reason in failed.items():
        prepared = read_prepared(root / folder)
        rows.append(S.failure(prepared.id, prepared.source, STAGE, reason))
    return pd.DataFrame(rows, columns=list(S.FAILURE_COLUMNS))
