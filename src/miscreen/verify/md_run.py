"""MD verification of a run's candidates: plan the tasks, run them (here with joblib, or
one SLURM array task each), analyse them into tables and a report section.

Run folder (names from :class:`~miscreen.catalog.RunCatalog.file`)::

    md/tasks.json                     the plan: protocol, candidates, one entry per task
    md/<candidate>/prepared.json      ordered supercell, ordering method, ML prediction
    md/<candidate>/relaxed.json       the CHGNet-relaxed cell every temperature starts from
    md/<candidate>/<T>K/              one task: task.json, checkpoint.json, frames-*.npz
    md_temperatures.csv               per candidate and temperature: D, sigma, hops, flags
    md_summary.csv                    per candidate: Ea, sigma(300 K) and interval, ML
    md_results.json                   all of it, with MSD curves, for the report and cases
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd
from pymatgen.core import Structure

from miscreen import atomic_io
from miscreen import schema as S
from miscreen.catalog import RunCatalog
from miscreen.verify import md as M
from miscreen.verify.md_analysis import (
    ArrheniusResult,
    TemperatureResult,
    analyze_trajectory,
    arrhenius,
)

log = logging.getLogger(__name__)

MD_DIR = "md"
MD_TEMPERATURES = "md_temperatures.csv"
MD_SUMMARY = "md_summary.csv"
MD_RESULTS = "md_results.json"
TASKS_JSON = "tasks.json"
SECTION_NAME = "md"
SECTION_ORDER = 65


@dataclass(frozen=True)
class MDCandidate:
    """A structure to simulate, with the ML prediction it is compared with (if any)."""

    id: str
    structure: Structure
    source: str = ""
    ml: tuple[float, float, float] | None = None  # predicted log10 sigma, lower, upper


def md_root(run: RunCatalog) -> Path:
    return run.file(MD_DIR)


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
    """The tasks of a run's MD verification, in array order."""

    protocol: M.MDProtocol
    seed: int
    candidates: list[str]  # candidate folder names
    tasks: list[str]  # task folders relative to the md folder

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol.to_dict(),
            "seed": self.seed,
            "candidates": self.candidates,
            "tasks": self.tasks,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plan:
        return cls(
            M.MDProtocol.from_dict(d["protocol"]),
            int(d["seed"]),
            list(d["candidates"]),
            list(d["tasks"]),
        )


def task_count(n_candidates: int, protocol: M.MDProtocol) -> int:
    return n_candidates * len(protocol.temperatures_k)


def plan(
    run: RunCatalog, candidates: list[MDCandidate], protocol: M.MDProtocol, seed: int = 0
) -> tuple[Plan, pd.DataFrame]:
    """Prepare every candidate (order, supercell) and write its tasks -> (plan, failures).
    A candidate that cannot be prepared is a failure with the reason; the rest go on.
    Planning again keeps the tasks already there (and refuses a different protocol)."""
    root = md_root(run)
    folders, tasks, failures = [], [], []
    for cand in candidates:
        folder = candidate_folder(cand.id)
        cdir = root / folder
        try:
            if not (cdir / M.PREPARED_JSON).exists():
                t0 = time.perf_counter()
                prepared = M.prepare(cand.id, cand.structure, protocol, seed, cand.source, cand.ml)
                M.write_prepared(cdir, prepared)
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
                M.write_task(cdir / temperature_folder(t), M.MDTask(cand.id, t, protocol, seed))
                own.append(f"{folder}/{temperature_folder(t)}")
        except (M.MDError, ValueError) as exc:
            failures.append(S.failure(cand.id, cand.source, M.STAGE, str(exc)))
            continue
        tasks += own
        folders.append(folder)
    the_plan = Plan(protocol, seed, folders, tasks)
    atomic_io.write_json(root / TASKS_JSON, the_plan.to_dict())
    return the_plan, pd.DataFrame(failures, columns=list(S.FAILURE_COLUMNS))


def read_plan(run: RunCatalog) -> Plan:
    path = md_root(run) / TASKS_JSON
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run `miscreen verify md` first")
    return Plan.from_dict(atomic_io.read_json(path))


def task_dir(run: RunCatalog, the_plan: Plan, index: int) -> Path:
    if not 0 <= index < len(the_plan.tasks):
        raise ValueError(f"task {index} does not exist (the plan has {len(the_plan.tasks)})")
    return md_root(run) / the_plan.tasks[index]


def _worker_logging() -> None:
    """Progress lines from joblib's worker processes (they start with no logging set up)."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            datefmt="%H:%M:%S",
        )


def _relax_one(cdir: Path, protocol: M.MDProtocol, device: str, threads: int) -> str | None:
    _worker_logging()
    try:
        M.set_threads(threads)
        M.ensure_relaxed(cdir, protocol, device)
    except Exception as exc:  # one candidate's failure must not cost the others
        return f"relaxation failed: {type(exc).__name__}: {exc}"
    return None


def _run_one(tdir: Path, device: str, threads: int, time_limit_s: float | None) -> str | None:
    _worker_logging()
    try:
        M.run_md_task(tdir, device=device, threads=threads, time_limit_s=time_limit_s)
    except Exception as exc:
        return f"MD at {tdir.name} failed: {type(exc).__name__}: {exc}"
    return None


def run_local(
    run: RunCatalog,
    jobs: int = 1,
    threads: int = 1,
    device: str = "cpu",
    time_limit_s: float | None = None,
) -> pd.DataFrame:
    """Relax each candidate, then run every unfinished task, ``jobs`` at a time (joblib
    processes, ``threads`` torch threads each) -> failures (candidate, reason)."""
    from joblib import Parallel, delayed

    the_plan = read_plan(run)
    root = md_root(run)
    par = Parallel(n_jobs=jobs, backend="loky" if jobs > 1 else "sequential")
    cdirs = [root / c for c in the_plan.candidates]
    errors = par(delayed(_relax_one)(c, the_plan.protocol, device, threads) for c in cdirs)
    failed = {c.name: e for c, e in zip(cdirs, errors, strict=True) if e}
    todo = [
        root / t
        for t in the_plan.tasks
        if t.split("/")[0] not in failed
        and M.task_progress(root / t) < the_plan.protocol.total_steps
    ]
    log.info("MD: %d of %d tasks to run, %d at a time", len(todo), len(the_plan.tasks), jobs)
    errors = par(delayed(_run_one)(t, device, threads, time_limit_s) for t in todo)
    failed |= {t.parent.name: e for t, e in zip(todo, errors, strict=True) if e}
    rows = []
    for folder, reason in failed.items():
        prepared = M.read_prepared(root / folder)
        rows.append(S.failure(prepared.id, prepared.source, M.STAGE, reason))
    return pd.DataFrame(rows, columns=list(S.FAILURE_COLUMNS))


@dataclass
class CandidateResult:
    """One candidate's MD verification."""

    id: str
    formula: str
    atoms: int
    n_li: int
    ordering: str
    ml: tuple[float, float, float] | None
    relaxed: dict[str, Any]
    temperatures: list[TemperatureResult]
    arrhenius: ArrheniusResult | None
    incomplete: list[float]  # temperatures whose task has not finished
    problems: list[str]  # temperatures that finished but could not be analysed, and why

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "formula": self.formula,
            "atoms": self.atoms,
            "n_li": self.n_li,
            "ordering": self.ordering,
            "ml": list(self.ml) if self.ml else None,
            "relaxed": self.relaxed,
            "temperatures": [t.to_dict() for t in self.temperatures],
            "arrhenius": self.arrhenius.to_dict() if self.arrhenius else None,
            "incomplete": self.incomplete,
            "problems": self.problems,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CandidateResult:
        return cls(
            **{
                **d,
                "ml": tuple(d["ml"]) if d.get("ml") else None,
                "temperatures": [TemperatureResult.from_dict(t) for t in d["temperatures"]],
                "arrhenius": ArrheniusResult.from_dict(d["arrhenius"]) if d["arrhenius"] else None,
            }
        )


def analyze_candidate(cdir: Path, protocol: M.MDProtocol) -> CandidateResult:
    """Every finished temperature of one candidate, and its Arrhenius fit (when at least
    two temperatures finished)."""
    prepared = M.read_prepared(cdir)
    relaxed = M.read_relaxed(cdir)
    temps, incomplete, problems = [], [], []
    for t in protocol.temperatures_k:
        tdir = cdir / temperature_folder(t)
        if relaxed is None or M.task_progress(tdir) < protocol.total_steps:
            incomplete.append(float(t))
            continue
        traj = M.read_trajectory(tdir)
        keep = traj.steps >= protocol.equilibration_steps
        try:
            result, _ = analyze_trajectory(
                relaxed.structure,
                traj.positions[keep],
                t,
                protocol.time_step_fs,
                protocol.save_every,
                protocol.min_hops,
                traj.temperature_k[keep],
            )
        except ValueError as exc:
            problems.append(str(exc))
            continue
        temps.append(result)
    fit = arrhenius(temps, relaxed.structure) if relaxed is not None and len(temps) >= 2 else None
    if fit is not None:
        fit.notes.extend(problems)
    structure = relaxed.structure if relaxed else prepared.structure
    return CandidateResult(
        id=prepared.id,
        formula=prepared.formula,
        atoms=len(structure),
        n_li=int(structure.composition[M.MOBILE]),
        ordering=prepared.ordering,
        ml=prepared.ml,
        relaxed={
            k: v for k, v in (relaxed.to_dict() if relaxed else {}).items() if k != "structure"
        },
        temperatures=temps,
        arrhenius=fit,
        incomplete=incomplete,
        problems=problems,
    )


def temperature_table(results: list[CandidateResult]) -> pd.DataFrame:
    rows = []
    for c in results:
        for t in c.temperatures:
            d = {k: v for k, v in t.to_dict().items() if k not in ("msd_dt_fs", "msd_a2")}
            rows.append({S.ID: c.id, S.FORMULA: c.formula, **d})
    return pd.DataFrame(rows)


def summary_table(results: list[CandidateResult], protocol: M.MDProtocol) -> pd.DataFrame:
    rows = []
    for c in results:
        a = c.arrhenius
        interval = a.sigma_300k_interval_ms_cm if a and a.sigma_300k_interval_ms_cm else None
        rows.append(
            {
                S.ID: c.id,
                S.FORMULA: c.formula,
                "md_protocol": protocol.name,
                "md_low_statistics": protocol.low_statistics,
                "md_atoms": c.atoms,
                "md_li_hops": sum(t.li_hops for t in c.temperatures),
                "md_temperatures_k": " ".join(f"{t.temperature_k:g}" for t in c.temperatures),
                "md_status": a.status if a else "incomplete",
                "md_ea_ev": a.ea_ev if a else None,
                "md_ea_stderr_ev": a.ea_stderr_ev if a else None,
                "md_sigma_300k_ms_cm": a.sigma_300k_ms_cm if a else None,
                "md_sigma_300k_lower_ms_cm": interval[0] if interval else None,
                "md_sigma_300k_upper_ms_cm": interval[1] if interval else None,
                "md_sigma_300k_upper_bound_ms_cm": a.sigma_300k_upper_bound_ms_cm if a else None,
                S.PRED: c.ml[0] if c.ml else None,
                S.LOWER: c.ml[1] if c.ml else None,
                S.UPPER: c.ml[2] if c.ml else None,
                "md_notes": "; ".join(a.notes) if a else "",
            }
        )
    return pd.DataFrame(rows)


def describe(protocol: M.MDProtocol) -> str:
    size = (
        f"every cell width ≥ {protocol.min_width_a:g} Å"
        if protocol.min_width_a
        else f"cells of up to ~{protocol.max_atoms} atoms"
    )
    return (
        f"NVT at {', '.join(f'{t:g}' for t in protocol.temperatures_k)} K, "
        f"{protocol.equilibration_ps:g} ps equilibration + {protocol.production_ps:g} ps "
        f"production each, {protocol.time_step_fs:g} fs steps, {size}; a temperature with "
        f"fewer than {protocol.min_hops} Li hops gives an upper bound only."
    )


def analyze(run: RunCatalog) -> list[CandidateResult]:
    """Analyse every candidate of the plan; write the tables, ``md_results.json`` and the
    report section. Unfinished tasks are listed as incomplete, not guessed."""
    from miscreen.verify.md_section import md_section

    the_plan = read_plan(run)
    root = md_root(run)
    results = [analyze_candidate(root / c, the_plan.protocol) for c in the_plan.candidates]
    atomic_io.write_table(temperature_table(results), run.file(MD_TEMPERATURES))
    atomic_io.write_table(summary_table(results, the_plan.protocol), run.file(MD_SUMMARY))
    atomic_io.write_json(
        run.file(MD_RESULTS),
        {"protocol": the_plan.protocol.to_dict(), "candidates": [r.to_dict() for r in results]},
    )
    shown = [
        {
            "id": r.id,
            "formula": r.formula,
            "atoms": r.atoms,
            "temperatures": r.temperatures,
            "arrhenius": r.arrhenius,
            "ml": r.ml,
        }
        for r in results
        if r.arrhenius is not None
    ]
    html = md_section(
        shown,
        the_plan.protocol.name,
        describe(the_plan.protocol),
        the_plan.protocol.low_statistics,
        run.figures,
    )
    pending = [r for r in results if r.incomplete or (r.problems and r.arrhenius is None)]
    if pending:
        items = [
            f"{r.id}: " + "; ".join([*(f"{t:g} K not finished" for t in r.incomplete), *r.problems])
            for r in pending
        ]
        html += (
            '<p class="note">Without a result yet: '
            + escape(" | ".join(items))
            + ". Run the same command again to resume unfinished tasks.</p>"
        )
    run.write_section(SECTION_NAME, html, order=SECTION_ORDER)
    return results


def read_results(run: RunCatalog) -> list[CandidateResult]:
    d = atomic_io.read_json(run.file(MD_RESULTS))
    return [CandidateResult.from_dict(c) for c in d["candidates"]]
