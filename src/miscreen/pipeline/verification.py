"""Wiring of the physics checks of a run's top candidates: BVSE barriers (``verify bvse``)
and machine-learned-potential MD (``verify md``).

Both pick their candidates the same way (:func:`top_ids`: the best ranked of
``candidates.parquet``). The verify stage returns data; this module writes it where the run
catalog says: the candidate table and the BVSE section, or the MD plan, tables, results,
section, failures and manifest entry. The one exception is the MD task folders under
``RunCatalog.md``, which each task writes itself so that a killed task resumes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from miscreen import atomic_io, batch
from miscreen import schema as S
from miscreen.batch import slurm
from miscreen.config import Config
from miscreen.errors import UserError
from miscreen.fetch.parsing import structure_from_json
from miscreen.fetch.sources import load_candidates
from miscreen.pipeline.stages import report_stage, write_manifest
from miscreen.potentials import default_threads, get_potential, resolve_device
from miscreen.verify import barrier_table
from miscreen.verify.bvse_section import bvse_section
from miscreen.verify.md_dynamics import TaskStatus, run_md_task
from miscreen.verify.md_protocol import (
    MD_POTENTIAL,
    MDProtocol,
    describe,
    error_line,
    get_protocol,
)
from miscreen.verify.md_protocol import STAGE as MD_STAGE
from miscreen.verify.md_results import (
    CandidateResult,
    analyze_plan,
    results_document,
    results_from_document,
    summary_line,
    summary_table,
    temperature_table,
)
from miscreen.verify.md_run import MDCandidate, Plan, prepare_tasks, run_local
from miscreen.verify.md_section import results_section
from miscreen.verify.md_tasks import EXPERIMENTAL, check_cell

MD_SECTION, MD_SECTION_ORDER = "md", 65
BVSE_SECTION, BVSE_SECTION_ORDER = "bvse", 62


def ranked_candidates(cfg: Config) -> pd.DataFrame:
    """The run's ranked candidate table; a clear error when the run has not screened yet."""
    path = cfg.run.candidates_parquet
    if not path.exists():
        raise UserError(f"{path} does not exist: run `miscreen run` (or `screen`) first")
    return atomic_io.read_table(path)


def top_ids(ranked: pd.DataFrame, top: int) -> list[str]:
    """The ids of the ``top`` best-ranked candidates, best first (unranked rows, such as
    excluded known materials, are never picked)."""
    rows = ranked[ranked[S.RANK].notna()].sort_values(S.RANK, kind="stable").head(top)
    return [str(i) for i in rows[S.ID]]


def candidate_records(cfg: Config, ids: list[str]) -> pd.DataFrame:
    """The configured sources' rows of these candidates (structures included)."""
    records = load_candidates(cfg).records
    return records[records[S.ID].astype(str).isin(ids)]


# ----------------------------------------------------------------------- BVSE


def verify_bvse_stage(cfg: Config, top: int) -> pd.DataFrame:
    """BVSE Li migration barriers for the ``top`` ranked candidates with a structure; the
    barrier columns join the candidate table, which is ranked again (``screen.barrier_weight``
    lets the barrier count in the score) and the report rendered again."""
    ranked = ranked_candidates(cfg)
    chosen = candidate_records(cfg, top_ids(ranked, top))
    table, failures = barrier_table(chosen, time_limit_s=cfg.features.time_limit_s)
    table = table.reset_index() if S.ID not in table else table
    kept = ranked.drop(columns=[c for c in table.columns if c != S.ID], errors="ignore")
    merged = kept.merge(table, on=S.ID, how="left")
    provenance = {"bvse_top": top, "bvse_rows": len(table), "bvse_failures": len(failures)}
    out = batch.write_screen_outputs(cfg, merged, failures, provenance, stage="verify")
    cfg.run.write_section(BVSE_SECTION, bvse_section(out, top), order=BVSE_SECTION_ORDER)
    report_stage(cfg)
    return out


# ----------------------------------------------------------------------- MD


@dataclass(frozen=True)
class MDChoice:
    """The candidates to simulate, the protocol, the potential and the cell (experimental:
    the input's lattice; relaxed: the potential's); those that cannot be are failures."""

    protocol: MDProtocol
    candidates: list[MDCandidate]
    failures: pd.DataFrame
    potential: str = MD_POTENTIAL
    cell: str = EXPERIMENTAL

    @property
    def tasks(self) -> int:
        return len(self.candidates) * len(self.protocol.temperatures_k)

    def lines(self) -> list[str]:
        """What a run prints before it starts (and a dry run shows): the tasks, protocol,
        potential and cell, the expected standard error of Ea, then each candidate."""
        p = self.protocol
        return [
            f"{len(self.candidates)} candidates x {len(p.temperatures_k)} temperatures = "
            f"{self.tasks} tasks ({p.name}: {describe(p)})",
            f"potential {self.potential} ({get_potential(self.potential).version}), "
            f"{self.cell} cell",
            error_line(p),
            *(
                f"  {c.id}: {c.structure.composition.reduced_formula}, {len(c.structure)} sites"
                for c in self.candidates
            ),
        ]


def parse_ids(ids: list[str] | None) -> list[str]:
    """Ids from repeated and comma-separated ``--ids`` values."""
    return [i.strip() for part in ids or [] for i in part.split(",") if i.strip()]


def choose_md(
    cfg: Config,
    protocol: str,
    top: int,
    ids: list[str] | None = None,
    potential: str = MD_POTENTIAL,
    cell: str = EXPERIMENTAL,
) -> MDChoice:
    """The ids given, or the run's ``top`` ranked candidates, with their structures from the
    configured sources and their ML predictions from ``candidates.parquet`` (when the run
    ranked them). An id without a structure is a failure with the reason."""
    proto = get_protocol(protocol)
    get_potential(potential)
    check_cell(cell)
    wanted = parse_ids(ids)
    ranked = None
    if not wanted or cfg.run.candidates_parquet.exists():
        try:
            ranked = ranked_candidates(cfg)
        except UserError as exc:
            raise UserError(f"{exc}, or name the candidates with --ids") from None
    wanted = wanted or top_ids(ranked, top)
    predictions = {}
    if ranked is not None:
        for row in ranked[ranked[S.ID].astype(str).isin(wanted)].to_dict("records"):
            values = (row.get(S.PRED), row.get(S.LOWER), row.get(S.UPPER))
            if all(v is not None and pd.notna(v) for v in values):
                predictions[str(row[S.ID])] = tuple(float(v) for v in values)
    by_id = {str(r[S.ID]): r for r in candidate_records(cfg, wanted).to_dict("records")}
    chosen, failures = [], []
    for cid in wanted:
        row = by_id.get(cid)
        if row is None or not isinstance(row.get(S.STRUCTURE), str):
            why = "not in the configured sources" if row is None else "has no structure"
            source = str(row.get(S.SOURCE, "")) if row else ""
            failures.append(S.failure(cid, source, MD_STAGE, f"candidate {why}: no MD"))
            continue
        structure = structure_from_json(row[S.STRUCTURE])
        chosen.append(MDCandidate(cid, structure, str(row.get(S.SOURCE, "")), predictions.get(cid)))
    if not chosen:
        raise UserError("no candidate with a structure to simulate")
    table = pd.DataFrame(failures, columns=list(S.FAILURE_COLUMNS))
    return MDChoice(proto, chosen, table, potential, cell)


def record_md_failures(cfg: Config, *tables: pd.DataFrame) -> pd.DataFrame:
    """This stage's failures so far (written even when empty, so none of an earlier run's
    stay behind) -> them."""
    failures = S.concat(S.empty_failures(), *tables)
    cfg.run.write_failures(MD_STAGE, failures)
    return failures


def plan_md(
    cfg: Config,
    candidates: list[MDCandidate],
    protocol: MDProtocol,
    failures: pd.DataFrame | None = None,
    potential: str = MD_POTENTIAL,
    cell: str = EXPERIMENTAL,
) -> tuple[Plan, pd.DataFrame]:
    """Prepare the candidates' task folders (with ``potential``, in ``cell``) and write the
    plan -> (plan, failures so far, ``failures`` included, as written to the run's
    failures)."""
    plan, plan_failures = prepare_tasks(cfg.run.md, candidates, protocol, cfg.seed, potential, cell)
    atomic_io.write_json(cfg.run.md_plan, plan.to_dict())
    return plan, record_md_failures(cfg, *(f for f in (failures, plan_failures) if f is not None))


def read_md_plan(cfg: Config) -> Plan:
    path = cfg.run.md_plan
    if not path.exists():
        raise UserError(f"{path} does not exist: run `miscreen verify md` first")
    return Plan.from_dict(atomic_io.read_json(path))


def run_md(
    cfg: Config,
    plan: Plan,
    failures: pd.DataFrame,
    jobs: int | None = None,
    threads: int = 1,
    device: str = "auto",
) -> pd.DataFrame:
    """Run the plan's unfinished tasks on this machine -> every failure so far (written)."""
    run_failures = run_local(
        cfg.run.md, plan, jobs or default_threads(), threads, resolve_device(device)
    )
    return record_md_failures(cfg, failures, run_failures)


def analyze_md(cfg: Config) -> list[CandidateResult]:
    """Analyse every candidate of the plan; write the tables, ``md_results.json``, the report
    section and the manifest entry. Unfinished tasks are listed as incomplete."""
    run, plan = cfg.run, read_md_plan(cfg)
    results = analyze_plan(run.md, plan)
    atomic_io.write_table(temperature_table(results), run.md_temperatures)
    atomic_io.write_table(summary_table(results, plan.protocol), run.md_summary)
    atomic_io.write_json(run.md_results, results_document(plan, results))
    html = results_section(
        results, plan.protocol, run.figures, plan.potential, plan.potential_version, plan.cell
    )
    run.write_section(MD_SECTION, html, order=MD_SECTION_ORDER)
    entry = {
        "protocol": plan.protocol.name,
        "tasks": len(plan.tasks),
        "potential": plan.potential,
        "potential_version": plan.potential_version,
        "cell": plan.cell,
    }
    write_manifest(cfg, MD_STAGE, entry)
    return results


def summary_lines(results: list[CandidateResult]) -> list[str]:
    """One line per candidate: sigma(300 K) (or its bound), Ea and the hops seen."""
    return [summary_line(r) for r in results]


def read_md_results(cfg: Config) -> list[CandidateResult]:
    return results_from_document(atomic_io.read_json(cfg.run.md_results))


def verify_md_stage(
    cfg: Config, choice: MDChoice, jobs: int | None = None, threads: int = 1, device: str = "auto"
) -> list[CandidateResult]:
    """Plan, run here (resuming whatever is done) and analyse the chosen candidates."""
    plan, failures = plan_md(
        cfg, choice.candidates, choice.protocol, choice.failures, choice.potential, choice.cell
    )
    if not plan.tasks:
        raise UserError(f"no candidate could be prepared for MD; see {cfg.run.failures}")
    run_md(cfg, plan, failures, jobs, threads, device)
    return analyze_md(cfg)


def md_task(
    cfg: Config,
    index: int,
    threads: int | None = None,
    device: str = "auto",
    time_limit_s: float | None = None,
) -> tuple[Path, TaskStatus]:
    """Run (or resume) task ``index`` of the plan -> (its folder, where it stopped)."""
    tdir = read_md_plan(cfg).task_dir(cfg.run.md, index)
    status = run_md_task(tdir, resolve_device(device), threads or default_threads(), time_limit_s)
    return tdir, status


# ----------------------------------------------------------------------- MD on SLURM


def md_job(
    cfg: Config,
    config_path: Path,
    tasks: int,
    device: str = "auto",
    time: str | None = None,
    gpus: int = 0,
) -> slurm.ArrayJob:
    """One array task per candidate and temperature (``time`` and ``gpus`` each), then the
    analysis once every task ended (timed-out tasks are listed as unfinished)."""
    exe, config = slurm.miscreen_command(), slurm.quoted_path(config_path)
    return slurm.ArrayJob(
        name=f"md-{cfg.run_name}",
        tasks=tasks,
        command=f"{exe} verify md-task {config} --index $SLURM_ARRAY_TASK_ID --device {device}",
        then=f"{exe} verify md-analyze {config}",
        then_name="analyze",
        log="md",
        then_log="md-analyze",
        notes=(
            "task i of the plan (results/<run>/md/tasks.json); a killed or timed-out task",
            "resumes from its last checkpoint when the array is submitted again",
        ),
        time=time,
        gpus=gpus,
        threads="${SLURM_CPUS_PER_TASK:-1}",
    )


def md_scripts(
    cfg: Config,
    config_path: Path,
    tasks: int,
    device: str = "auto",
    time: str | None = None,
    gpus: int = 0,
) -> slurm.Scripts:
    """The MD job-array script and its analysis script."""
    return slurm.render(cfg, md_job(cfg, config_path, tasks, device, time, gpus))


@dataclass(frozen=True)
class Submitted:
    """Where the scripts went and the job ids ``sbatch`` gave."""

    array_script: Path
    then_script: Path
    array_id: str
    then_id: str
    tasks: int


def submit_md_stage(
    cfg: Config,
    config_path: Path,
    choice: MDChoice,
    device: str = "auto",
    time: str | None = None,
    gpus: int = 0,
) -> Submitted:
    """Plan the chosen candidates, write the scripts into the run's ``slurm/`` folder and
    submit the array and, after it (``afterany``), the analysis."""
    plan, _ = plan_md(
        cfg, choice.candidates, choice.protocol, choice.failures, choice.potential, choice.cell
    )
    if not plan.tasks:
        raise UserError(f"no candidate could be prepared for MD; see {cfg.run.failures}")
    scripts = md_scripts(cfg, config_path, len(plan.tasks), device, time, gpus)
    array, then = slurm.write_scripts(scripts, cfg.run.md_array_script, cfg.run.md_analyze_script)
    array_id, then_id = slurm.submit(array, then, dependency="afterany")
    return Submitted(array, then, array_id, then_id, len(plan.tasks))
