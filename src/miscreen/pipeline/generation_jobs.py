"""Where the relaxations of a generation plan run -- here in processes, on Dask (one task
per unfinished candidate), or as a SLURM array whose finish job runs once every task ended --
and ``generate_stage``, which plans, relaxes and finishes in one call. The plan and the finish
are :mod:`miscreen.pipeline.generation`'s; every relaxation writes its own result file, so a
rerun or a resubmitted array skips what is done.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pymatgen.core import Structure

from miscreen import batch
from miscreen import schema as S
from miscreen.batch import slurm
from miscreen.config import Config
from miscreen.errors import UserError
from miscreen.generate.relax import read_result, relax_one, relax_processes, result_path
from miscreen.pipeline.generation import (
    finish_generation,
    plan_generation,
    plan_items,
    read_plan,
    settings,
)
from miscreen.potentials import Relaxation, set_threads
from miscreen.progress import Progress

log = logging.getLogger(__name__)


def relax_task(cfg: Config, index: int, threads: int | None = None) -> Relaxation:
    """Relax candidate ``index`` of the plan (read when done): one SLURM array task or Dask
    task (with ``threads`` torch threads when given)."""
    if threads:
        set_threads(threads)
    c = read_plan(cfg)["candidates"][index]  # only this one's structure is parsed
    structure = Structure.from_dict(c[S.STRUCTURE])
    return relax_one(cfg.run.generate_relaxed, index, c[S.ID], structure, settings(cfg))


def relax_local(cfg: Config, plan: dict, jobs: int | None = None) -> dict[int, Relaxation]:
    """Relax every unfinished candidate here, in ``jobs`` processes (``generate.jobs``)."""
    folder = cfg.run.generate_relaxed
    folder.mkdir(parents=True, exist_ok=True)
    return relax_processes(folder, plan_items(plan), settings(cfg), jobs or cfg.generate.jobs)


def relax_dask(cfg: Config, plan: dict, client: Any) -> tuple[int, dict[str, str]]:
    """Relax every unfinished candidate on ``client``'s Dask cluster, one :func:`relax_task`
    each with one torch thread (the workers read the plan and write the result files on a
    filesystem they share) -> (tasks submitted, the failed candidates' reasons by id)."""
    from distributed import as_completed

    folder, relax = cfg.run.generate_relaxed, settings(cfg)  # the workers make the folder
    todo = {i: cid for i, cid, s in plan_items(plan)
            if read_result(result_path(folder, i), s, relax) is None}  # fmt: skip
    shipped = cfg.model_copy(update={"results_dir": cfg.results_dir.resolve()})
    futures = {
        client.submit(relax_task, shipped, i, 1, key=f"miscreen-relax-{i}-{uuid.uuid4().hex}",
                      pure=False): i
        for i in todo
    }  # fmt: skip
    failed: dict[str, str] = {}
    with Progress("generate: relaxations on dask", len(todo), "structures") as progress:
        for future in as_completed(futures):
            cid = todo[futures[future]]
            try:
                future.result()
            except Exception as exc:  # a worker's error or a lost worker (KilledWorker)
                failed[cid] = f"relaxation failed on dask: {type(exc).__name__}: {exc}"
                log.warning("generate: %s: %s", cid, failed[cid])
            progress.advance(1, int(cid in failed))
    return len(todo), failed


def planned(cfg: Config) -> dict:
    """The generation plan, or a :class:`UserError` when it holds nothing to relax."""
    plan = plan_generation(cfg)
    if not plan["candidates"]:
        raise UserError("generate: every candidate is a known material or was skipped")
    return plan


def relax_backend(cfg: Config, backend: str | None = None, scheduler: str | None = None) -> str:
    """Where the relaxations run: ``backend`` when given (local, slurm or dask), dask when a
    ``scheduler`` is given, ``generate.backend`` when the config sets it, else
    ``batch.backend`` (local or dask, as ``miscreen screen``)."""
    if backend or scheduler:
        return backend or "dask"
    return cfg.generate.backend if "backend" in cfg.generate.model_fields_set else cfg.batch.backend


def generate_stage(
    cfg: Config,
    jobs: int | None = None,
    predict: bool = True,
    backend: str = "local",
    scheduler: str | None = None,
) -> pd.DataFrame:
    """Plan, relax here or on Dask (``backend``; resuming whatever is done) and finish."""
    plan = planned(cfg)
    if backend != "dask":
        relax_local(cfg, plan, jobs)
        return finish_generation(cfg, predict)
    with batch.dask_client(cfg.batch.dask, scheduler) as client:
        _, failed = relax_dask(cfg, plan, client)
    return finish_generation(cfg, predict, failed)


@dataclass(frozen=True)
class Submitted:
    """Where the scripts went and the job ids ``sbatch`` gave."""

    array_script: Path
    then_script: Path
    array_id: str
    then_id: str
    tasks: int


def generate_job(cfg: Config, config_path: Path, tasks: int) -> slurm.ArrayJob:
    """One array task per candidate, then the finish once every task ended (an unrelaxed
    candidate is listed as a failure; submitting again resumes)."""
    exe, config = slurm.miscreen_command(), slurm.quoted_path(config_path)
    return slurm.ArrayJob(
        name=f"generate-{cfg.run_name}",
        tasks=tasks,
        command=f"{exe} generate-task {config} --index $SLURM_ARRAY_TASK_ID",
        then=f"{exe} generate-finish {config}",
        then_name="finish",
        log="generate",
        then_log="generate-finish",
        notes=(
            "candidate i of the plan (results/<run>/generate/plan.json); a finished",
            "relaxation is skipped when the array is submitted again",
        ),
        threads="${SLURM_CPUS_PER_TASK:-1}",
    )


def submit_generation(cfg: Config, config_path: Path) -> Submitted:
    """Plan, write the array and finish scripts into the run's ``slurm/`` folder and submit
    them (the finish ``afterany``)."""
    tasks = len(planned(cfg)["candidates"])
    scripts = slurm.render(cfg, generate_job(cfg, config_path, tasks))
    array, then = slurm.write_scripts(
        scripts, cfg.run.generate_array_script, cfg.run.generate_finish_script
    )
    array_id, then_id = slurm.submit(array, then, dependency="afterany")
    return Submitted(array, then, array_id, then_id, tasks)
