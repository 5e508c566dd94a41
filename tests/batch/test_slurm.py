"""``miscreen slurm submit`` without a cluster: the job-array and merge scripts carry the
configured resources, and what is refused before ``sbatch`` is called. The scripts running
as a real array and merge are tested on a real cluster (``test_slurm_cluster.py``)."""

from __future__ import annotations

import os
import stat

from typer.testing import CliRunner

from miscreen.cli import app

SLURM = """batch:
  chunk_size: 40
  slurm:
    shards: 4
    max_parallel: 2
    partition: short
    account: proj42
    time: "00:20:00"
    cpus_per_task: 2
    mem: 3G
    extra_sbatch: ["--qos=debug"]
    setup: ["module load python/3.11"]
"""

runner = CliRunner()


def slurm_config(batch_run, name: str):
    path = batch_run.config(name)
    text = path.read_text().replace("batch: {chunk_size: 40}", SLURM)
    path.write_text(text)
    return path


def test_dry_run_prints_scripts_with_the_configured_resources(batch_run):
    config = slurm_config(batch_run, "slurm-dry")
    result = runner.invoke(app, ["slurm", "submit", str(config), "--dry-run"])
    assert result.exit_code == 0, result.output
    out = result.output
    for line in (
        "#SBATCH --array=0-3%2",
        "#SBATCH --partition=short",
        "#SBATCH --account=proj42",
        "#SBATCH --time=00:20:00",
        "#SBATCH --cpus-per-task=2",
        "#SBATCH --mem=3G",
        "#SBATCH --qos=debug",
        "module load python/3.11",
        f"screen {config}",
        f"merge {config} --shards 4",
    ):
        assert line in out, line
    assert not (batch_run.root / "results" / "slurm-dry").exists()  # nothing written


def test_submit_without_sbatch_says_so(batch_run, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    result = runner.invoke(app, ["slurm", "submit", str(slurm_config(batch_run, "slurm-no"))])
    assert result.exit_code == 1 and "sbatch is not on PATH" in result.output


def recording_sbatch(tmp_path, monkeypatch):
    """A fake ``sbatch`` on PATH that logs its arguments -> the log file."""
    log = tmp_path / "sbatch.log"
    fake = tmp_path / "bin" / "sbatch"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/bash\necho "$@" >> {log}\necho $((1000 + $(wc -l < {log})))\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    return log


def test_an_untrained_run_is_refused_before_anything_is_submitted(batch_run, tmp_path, monkeypatch):
    """Issue 27, point 14: every array task would featurize, then fail with "train first"."""
    log = recording_sbatch(tmp_path, monkeypatch)
    config = slurm_config(batch_run, "slurm-untrained")
    untrained = tmp_path / "no-models"
    config.write_text(config.read_text().replace(f"{batch_run.root}/models", str(untrained)))
    result = runner.invoke(app, ["slurm", "submit", str(config)])
    assert result.exit_code == 1
    assert "holds no trained models" in result.output and "miscreen train" in result.output
    assert not log.exists()  # sbatch never called
    assert not (batch_run.root / "results" / "slurm-untrained").exists()  # no scripts either


def test_missing_measured_materials_are_refused_when_the_screen_excludes_them(
    batch_run, tmp_path, monkeypatch
):
    log = recording_sbatch(tmp_path, monkeypatch)
    config = slurm_config(batch_run, "slurm-known")
    config.write_text(config.read_text() + "screen: {exclude_known: true}\n")
    result = runner.invoke(app, ["slurm", "submit", str(config)])
    assert result.exit_code == 1
    assert "known_materials.parquet is missing" in result.output
    assert not log.exists()


def test_screening_and_md_arrays_share_one_header_and_environment(batch_run):
    """One renderer: the MD array (verify md --slurm) and the screening array differ only
    in what they run and the resources asked for them."""
    from miscreen.batch.slurm import screening_scripts
    from miscreen.config import load_config
    from miscreen.pipeline.verification import md_scripts

    config = slurm_config(batch_run, "slurm-same")
    cfg = load_config(config)
    screen = screening_scripts(cfg, config, 4)
    md = md_scripts(cfg, config, 6, gpus=1)
    own = ("#SBATCH --job-name", "#SBATCH --output", "#SBATCH --array", "#SBATCH --gres", "export")

    def shared(text: str) -> list[str]:
        """Header and environment lines, less those naming the job and its own resources."""
        keep = ("#!", "#SBATCH", "set ", "module ", "export ")
        return [x for x in text.splitlines() if x.startswith(keep) and not x.startswith(own)]

    assert len(shared(screen.array)) == 11  # shebang, 8 #SBATCH, set -e, module load
    assert shared(screen.array) == shared(md.array)
    assert shared(screen.then) == shared(md.then)
    env = next(line for line in md.array.splitlines() if "OMP_NUM_THREADS" in line)
    assert env == (
        "export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1} "
        "OPENBLAS_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1} MKL_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}"
    )
    assert "#SBATCH --gres=gpu:1" in md.array and "--gres" not in screen.array


def test_the_merge_job_names_the_tasks_that_left_their_shards_unfinished(batch_run, monkeypatch):
    """What the merge job prints when no task finished: the array it waited for (from
    SLURM_JOB_DEPENDENCY; ``*`` when run by hand), the tasks, the first log and the fix."""
    config = slurm_config(batch_run, "slurm-none")
    logs = batch_run.root / "results" / "slurm-none" / "batch" / "slurm"
    monkeypatch.delenv("SLURM_JOB_DEPENDENCY", raising=False)
    result = runner.invoke(app, ["slurm", "merge", str(config), "--shards", "2"])
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert "job array *: task(s) 0, 1 ended without finishing their shards" in message
    assert f"(log: {logs}/screen-*_0.out ...)" in message
    assert f"`miscreen slurm submit {config}` again resumes them" in message
    monkeypatch.setenv("SLURM_JOB_DEPENDENCY", "afterany:77")
    result = runner.invoke(app, ["slurm", "merge", str(config), "--shards", "2"])
    assert result.exit_code == 1 and "job array 77: task(s) 0, 1" in result.output
    assert not (logs.parent / "candidates.csv").exists()
