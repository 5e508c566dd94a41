"""``miscreen verify md`` on SLURM: the array script (one task per candidate x temperature)
and the dependent analysis job, shown with --dry-run and submitted through ``sbatch``."""

from __future__ import annotations

import os
import stat

from typer.testing import CliRunner

from miscreen.cli.verify import ANALYZE_SCRIPT, ARRAY_SCRIPT, app
from miscreen.verify import md_run as R

runner = CliRunner()

CONFIG = """run_name: md-cli
results_dir: {root}/results
candidates:
  - kind: pymatgen
    names: [Li10GeP2S12, Li2O, LiFePO4]
batch:
  slurm:
    max_parallel: 4
    partition: gpu
    account: proj42
    time: "02:00:00"
    cpus_per_task: 4
    mem: 6G
    setup: ["module load python/3.11"]
"""
IDS = "pymatgen:Li10GeP2S12,pymatgen:Li2O"


def config(tmp_path):
    path = tmp_path / "md.yaml"
    path.write_text(CONFIG.format(root=tmp_path))
    return path


def test_dry_run_shows_one_array_task_per_candidate_and_temperature(tmp_path):
    path = config(tmp_path)
    args = [
        "md",
        str(path),
        "--ids",
        IDS,
        "--protocol",
        "standard",
        "--slurm",
        "--dry-run",
        "--gpus",
        "1",
        "--time",
        "12:00:00",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "2 candidates x 5 temperatures = 10 tasks" in out
    for line in (
        "#SBATCH --array=0-9%4",
        "#SBATCH --time=12:00:00",
        "#SBATCH --gres=gpu:1",
        "#SBATCH --partition=gpu",
        "#SBATCH --account=proj42",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --mem=6G",
        "module load python/3.11",
        f"verify md-task {path.resolve()} --index $SLURM_ARRAY_TASK_ID --device auto",
        f"verify md-analyze {path.resolve()}",
    ):
        assert line in out, line
    assert not (tmp_path / "results").exists()  # nothing written


def test_submission_plans_the_tasks_and_chains_the_analysis_after_the_array(tmp_path, monkeypatch):
    log = tmp_path / "sbatch.log"
    fake = tmp_path / "bin" / "sbatch"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/bash\necho "$@" >> {log}\necho $((500 + $(wc -l < {log})))\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    path = config(tmp_path)
    result = runner.invoke(app, ["md", str(path), "--ids", IDS, "--slurm"])
    assert result.exit_code == 0, result.output
    assert "submitted MD array 501 (6 tasks) and analysis job 502 (afterany:501)" in result.output
    calls = log.read_text().splitlines()
    assert calls[0].endswith(ARRAY_SCRIPT) and calls[1].endswith(ANALYZE_SCRIPT)
    assert "--dependency=afterany:501" in calls[1]
    run_dir = tmp_path / "results" / "md-cli"
    from miscreen.catalog import RunCatalog

    plan = R.read_plan(RunCatalog(run_dir))
    assert len(plan.tasks) == 6 and plan.protocol.name == "quick"
    assert plan.tasks[0].endswith("/800K")
    array = next(run_dir.rglob(ARRAY_SCRIPT)).read_text()
    assert "#SBATCH --array=0-5%4" in array


def test_without_a_ranked_run_the_ids_are_required(tmp_path):
    result = runner.invoke(app, ["md", str(config(tmp_path)), "--top", "2", "--dry-run"])
    assert result.exit_code == 1
    assert "candidates.parquet does not exist" in result.output


def test_an_array_task_runs_its_task_stops_at_a_time_limit_and_resumes(tmp_path, monkeypatch):
    """What each array task runs: ``md-task`` picks its task from SLURM_ARRAY_TASK_ID,
    stops cleanly at a checkpoint past --time-limit-s, and the next call finishes it."""
    from pymatgen.core import Structure

    from miscreen.catalog import RunCatalog
    from miscreen.verify import md as M

    from .test_md import STRUCTURES, TINY

    path = config(tmp_path)
    run = RunCatalog(tmp_path / "results" / "md-cli")
    li2o = Structure.from_file(STRUCTURES / "Li2O.json") * (2, 1, 1)
    plan, _ = R.plan(run, [R.MDCandidate("pymatgen:Li2O", li2o)], TINY)
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    result = runner.invoke(app, ["md-task", str(path), "--device", "cpu", "--time-limit-s", "0"])
    assert result.exit_code == 0, result.output
    assert "task 1 (" in result.output and "1000K): step 10/120, stopped" in result.output
    result = runner.invoke(app, ["md-task", str(path), "--device", "cpu"])
    assert result.exit_code == 0 and "step 120/120, finished" in result.output
    assert M.task_progress(R.task_dir(run, plan, 0)) == 0  # task 0 was not touched
    result = runner.invoke(app, ["md-task", str(path), "--index", "2"])
    assert result.exit_code == 1 and "task 2 does not exist (the plan has 2)" in result.output


def test_top_candidates_come_ranked_with_their_ml_prediction(tmp_path):
    import pandas as pd

    from miscreen import atomic_io
    from miscreen.cli.verify import select
    from miscreen.config import load_config

    cfg = load_config(config(tmp_path))
    ranked = pd.DataFrame(
        {
            "id": ["pymatgen:LiFePO4", "pymatgen:Li10GeP2S12", "pymatgen:Li2O", "mp-x"],
            "rank": [2.0, 1.0, None, 3.0],
            "predicted_log10_sigma": [-5.0, -2.0, -9.0, -6.0],
            "lower": [-6.0, -3.0, -10.0, -7.0],
            "upper": [-4.0, -1.0, -8.0, -5.0],
        }
    )
    atomic_io.write_table(ranked, cfg.run.candidates_parquet)
    chosen, failures = select(cfg, top=3, ids=None)
    assert [c.id for c in chosen] == ["pymatgen:Li10GeP2S12", "pymatgen:LiFePO4"]
    assert chosen[0].ml == (-2.0, -3.0, -1.0)
    assert list(failures["id"]) == ["mp-x"]  # ranked, but not in the configured sources
    assert "not in the configured sources" in failures["reason"].iloc[0]
