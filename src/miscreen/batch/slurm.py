"""SLURM job-array scripts for sharded screening, and their submission with ``sbatch``.

Array task ``i`` of ``N`` runs ``miscreen screen CONFIG`` (the shard comes from
``SLURM_ARRAY_TASK_ID``/``SLURM_ARRAY_TASK_COUNT``); a merge job waits for the whole array
(``--dependency=afterok``) and ranks every shard's predictions together.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from miscreen.config import Config, SlurmConfig


@dataclass(frozen=True)
class Scripts:
    """The array script and the merge script, as text."""

    array: str
    merge: str


def miscreen_command() -> str:
    """How to call this installation's ``miscreen`` from a batch job."""
    exe = Path(sys.executable).with_name("miscreen")
    return (
        shlex.quote(str(exe))
        if exe.exists()
        else f"{shlex.quote(sys.executable)} -c 'from miscreen.cli import app; app()'"
    )


def _header(cfg: Config, name: str, time: str, mem: str, workdir: Path) -> list[str]:
    """``#SBATCH`` lines shared by both jobs."""
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
    lines += [f"#SBATCH {opt}" for opt in s.extra_sbatch]
    return lines


def render(
    cfg: Config, config_path: Path, shards: int | None = None, workdir: Path | None = None
) -> Scripts:
    """The job-array script (``shards`` tasks, default ``batch.slurm.shards``) and merge script."""
    s = cfg.batch.slurm
    n = shards or s.shards
    workdir = (workdir or Path.cwd()).resolve()
    log_dir = (workdir / cfg.run.slurm).resolve()
    config = shlex.quote(str(Path(config_path).resolve()))
    throttle = f"%{s.max_parallel}" if s.max_parallel else ""
    env = [
        "set -euo pipefail",
        *s.setup,
        "export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1",
    ]
    array = _header(cfg, f"miscreen-{cfg.run_name}", s.time, s.mem, workdir)
    array += [
        f"#SBATCH --array=0-{n - 1}{throttle}",
        f"#SBATCH --output={log_dir}/screen-%A_%a.out",
        "",
        *env,
        "# the shard (i of N) comes from SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT;",
        "# a re-submitted task skips a finished shard and resumes a killed one",
        f"{miscreen_command()} screen {config}",
        "",
    ]
    merge = _header(cfg, f"miscreen-{cfg.run_name}-merge", s.merge_time, s.merge_mem, workdir)
    merge += [
        f"#SBATCH --output={log_dir}/merge-%j.out",
        "",
        *env,
        f"{miscreen_command()} merge {config} --shards {n}",
        "",
    ]
    return Scripts("\n".join(array), "\n".join(merge))


def write_scripts(cfg: Config, scripts: Scripts, workdir: Path | None = None) -> tuple[Path, Path]:
    """Write both scripts under ``results/<run>/slurm/`` (the log folder is created too)."""
    from miscreen import atomic_io

    folder = (workdir or Path.cwd()) / cfg.run.slurm
    folder.mkdir(parents=True, exist_ok=True)
    array = atomic_io.write_text(folder / "screen-array.sh", scripts.array)
    merge = atomic_io.write_text(folder / "merge.sh", scripts.merge)
    return array, merge


class SubmitError(RuntimeError):
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


def submit(array_script: Path, merge_script: Path) -> tuple[str, str]:
    """Submit the array, then the merge job that runs once every array task succeeded."""
    array_id = sbatch(array_script)
    merge_id = sbatch(merge_script, f"--dependency=afterok:{array_id}", "--kill-on-invalid-dep=yes")
    return array_id, merge_id
