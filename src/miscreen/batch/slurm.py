"""SLURM job arrays, and their submission with ``sbatch``: one renderer (:func:`render`)
for every job array of a run and the job that waits for it.

Screening (:func:`screening_job`): array task ``i`` of ``N`` runs ``miscreen screen CONFIG``
(the shard comes from ``SLURM_ARRAY_TASK_ID``/``SLURM_ARRAY_TASK_COUNT``); a merge job runs
once every task ended (``--dependency=afterany``) and ranks every shard's predictions
together (:func:`merge_array`), or, when a task failed or was cancelled, fails naming the
task, its log and how to resume it.
``verify md --slurm`` builds its own :class:`ArrayJob` (one task per candidate and
temperature, then the analysis) in :mod:`miscreen.pipeline.verification`.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from miscreen.batch.run import ShardError, merge_shards
from miscreen.config import Config, SlurmConfig
from miscreen.errors import UserError


@dataclass(frozen=True)
class Scripts:
    """A job-array script and the script of the job that waits for the array, as text."""

    array: str
    then: str  # the dependent job: the screening merge, or the MD analysis


@dataclass(frozen=True)
class ArrayJob:
    """A job array and the one job that runs after it: their commands and resources.

    ``name`` names both jobs (``miscreen-<name>`` and ``miscreen-<name>-<then_name>``) and
    their logs (``<log>-%A_%a.out`` and ``<log>-<then_name>-%j.out``, or ``<then_name>-%j.out``
    without a log prefix). The array runs with ``time`` (default ``batch.slurm.time``) and
    ``batch.slurm.mem``, the dependent job with ``merge_time`` and ``merge_mem``.
    """

    name: str
    tasks: int
    command: str  # what every array task runs
    then: str  # what the dependent job runs
    then_name: str  # "merge" | "analyze"
    log: str  # log file prefix of the array tasks
    then_log: str  # log file prefix of the dependent job
    notes: tuple[str, ...] = ()  # comment lines above the array task's command
    time: str | None = None
    gpus: int = 0
    threads: str = "1"  # OMP/BLAS threads per task (shell text, e.g. "${SLURM_CPUS_PER_TASK:-1}")


def miscreen_command() -> str:
    """How to call this installation's ``miscreen`` from a batch job."""
    exe = Path(sys.executable).with_name("miscreen")
    return (
        shlex.quote(str(exe))
        if exe.exists()
        else f"{shlex.quote(sys.executable)} -c 'from miscreen.cli import app; app()'"
    )


def quoted_path(path: Path) -> str:
    """An absolute path as a shell word (config files in job scripts)."""
    return shlex.quote(str(Path(path).resolve()))


def header(cfg: Config, name: str, time: str, mem: str, workdir: Path, gpus: int = 0) -> list[str]:
    """The ``#SBATCH`` lines every job of a run shares: name, folder, resources, account."""
    s: SlurmConfig = cfg.batch.slurm
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={name}",
        f"#SBATCH --chdir={workdir}",
        f"#SBATCH --time={time}",
        f"#SBATCH --mem={mem}",
        "#SBATCH --ntasks=1",
        f"#SBATCH --cpus-per-task={s.cpus_per_task}",
    ]
    if s.partition:
        lines.append(f"#SBATCH --partition={s.partition}")
    if s.account:
        lines.append(f"#SBATCH --account={s.account}")
    if gpus:
        lines.append(f"#SBATCH --gres=gpu:{gpus}")
    lines += [f"#SBATCH {opt}" for opt in s.extra_sbatch]
    return lines


def environment(cfg: Config, threads: str = "1") -> list[str]:
    """The shell lines before a job's command: strict mode, ``batch.slurm.setup`` and the
    math libraries' thread counts."""
    return [
        "set -euo pipefail",
        *cfg.batch.slurm.setup,
        f"export OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} "
        f"MKL_NUM_THREADS={threads}",
    ]


def render(cfg: Config, job: ArrayJob, workdir: Path | None = None) -> Scripts:
    """The job-array script and the dependent job's script of ``job``, run from
    ``workdir`` (default: here), logging into the run's ``slurm/`` folder."""
    s = cfg.batch.slurm
    workdir = (workdir or Path.cwd()).resolve()
    log_dir = (workdir / cfg.run.slurm).resolve()
    throttle = f"%{s.max_parallel}" if s.max_parallel else ""
    env = environment(cfg, job.threads)
    array = header(cfg, f"miscreen-{job.name}", job.time or s.time, s.mem, workdir, job.gpus)
    array += [
        f"#SBATCH --array=0-{job.tasks - 1}{throttle}",
        f"#SBATCH --output={log_dir}/{task_log(job.log)}",
        "",
        *env,
        *(f"# {note}" for note in job.notes),
        job.command,
        "",
    ]
    then = header(cfg, f"miscreen-{job.name}-{job.then_name}", s.merge_time, s.merge_mem, workdir)
    then += [
        f"#SBATCH --output={log_dir}/{job.then_log}-%j.out",
        "",
        *env,
        job.then,
        "",
    ]
    return Scripts("\n".join(array), "\n".join(then))


SCREEN_LOG = "screen"  # the screening array's log name


def task_log(log: str, array: str = "%A", task: int | str = "%a") -> str:
    """An array task's log file name: SLURM's pattern by default, or one task's name."""
    return f"{log}-{array}_{task}.out"


def screening_job(cfg: Config, config_path: Path, shards: int | None = None) -> ArrayJob:
    """Sharded screening: array task ``i`` of ``shards`` (default ``batch.slurm.shards``)
    screens its shard; the merge ranks every shard's predictions together."""
    n = shards or cfg.batch.slurm.shards
    config = quoted_path(config_path)
    return ArrayJob(
        name=cfg.run_name,
        tasks=n,
        command=f"{miscreen_command()} screen {config}",
        then=f"{miscreen_command()} slurm merge {config} --shards {n}",
        then_name="merge",
        log=SCREEN_LOG,
        then_log="merge",
        notes=(
            "the shard (i of N) comes from SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT;",
            "a re-submitted task skips a finished shard and resumes a killed one",
        ),
    )


def screening_scripts(
    cfg: Config, config_path: Path, shards: int | None = None, workdir: Path | None = None
) -> Scripts:
    """The screening job-array script and its merge script."""
    return render(cfg, screening_job(cfg, config_path, shards), workdir)


def write_scripts(scripts: Scripts, array_path: Path, then_path: Path) -> tuple[Path, Path]:
    """Write both scripts (their folder, the run's ``slurm/`` where the logs go, is created)."""
    from miscreen import atomic_io

    Path(array_path).parent.mkdir(parents=True, exist_ok=True)
    Path(then_path).parent.mkdir(parents=True, exist_ok=True)
    return (
        atomic_io.write_text(Path(array_path), scripts.array),
        atomic_io.write_text(Path(then_path), scripts.then),
    )


def check_trained(cfg: Config) -> None:
    """Refuse, before anything is submitted, a screening whose every task would fail: the
    run's models must exist and load (``ModelLoadError`` says how to train them), and the
    run's measured materials must be there when ``screen.exclude_known`` needs them."""
    from miscreen.train.routing import load_models

    load_models(cfg.models)
    if cfg.screen.exclude_known and not cfg.run.known_materials.is_file():
        raise UserError(
            f"{cfg.run.known_materials} is missing: screen.exclude_known needs the run's "
            "measured materials, which `miscreen train CONFIG` writes; train first"
        )


class SubmitError(UserError, RuntimeError):
    """``sbatch`` is missing or refused a job; the message carries its output."""


def sbatch(script: Path, *options: str) -> str:
    """Submit ``script`` -> the job id (``sbatch --parsable``)."""
    exe = shutil.which("sbatch")
    if exe is None:
        raise SubmitError("sbatch is not on PATH: run this on a SLURM login node, or use --dry-run")
    res = subprocess.run(
        [exe, "--parsable", *options, str(script)], capture_output=True, text=True, check=False
    )
    if res.returncode != 0:
        raise SubmitError(f"sbatch {script} failed ({res.returncode}): {res.stderr.strip()}")
    return res.stdout.strip().split(";")[0]


def submit(array_script: Path, then_script: Path, dependency: str = "afterany") -> tuple[str, str]:
    """Submit the array, then the job that waits for it: ``afterany`` runs it once every
    array task ended, however (the merge then names the shards a failed or cancelled task
    left missing, and the MD analysis lists unfinished tasks); ``afterok`` runs it once every
    task succeeded and cancels it, silently, when one did not."""
    array_id = sbatch(array_script)
    then_id = sbatch(
        then_script, f"--dependency={dependency}:{array_id}", "--kill-on-invalid-dep=yes"
    )
    return array_id, then_id


class UnfinishedTasks(UserError, RuntimeError):
    """Array tasks ended without finishing their shards; names them, their logs and how to
    resume them."""


def dependency_job(env: Mapping[str, str] = os.environ) -> str | None:
    """The job this job waited for (``SLURM_JOB_DEPENDENCY``, e.g. ``afterany:123``)."""
    found = re.search(r":(\d+)", env.get("SLURM_JOB_DEPENDENCY", ""))
    return found.group(1) if found else None


def merge_array(cfg: Config, config_path: Path, shards: int) -> pd.DataFrame:
    """What the merge job runs: rank the ``shards`` shards together (``miscreen merge``).
    Shards the array left unfinished (a task failed, was cancelled or timed out) are an
    :class:`UnfinishedTasks` error naming the tasks (task i screens shard i) and their logs."""
    try:
        return merge_shards(cfg, shards)
    except ShardError as exc:
        missing = [i for i in range(shards) if not cfg.run.shard(i, shards).done.exists()]
        if not missing:
            raise
        array = dependency_job() or "*"
        logs = [str(cfg.run.slurm.resolve() / task_log(SCREEN_LOG, array, i)) for i in missing]
        raise UnfinishedTasks(
            f"job array {array}: task(s) {', '.join(map(str, missing[:10]))}"
            f"{' ...' if len(missing) > 10 else ''} ended without finishing their shards "
            f"(log: {logs[0]}{' ...' if len(logs) > 1 else ''}); `miscreen slurm submit "
            f"{config_path}` again resumes them (finished shards are skipped). {exc}"
        ) from None
