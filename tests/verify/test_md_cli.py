"""``miscreen verify md`` on SLURM: the array script (one task per candidate x temperature)
and the dependent analysis job, shown with --dry-run and submitted through ``sbatch``."""

from __future__ import annotations

import os
import stat

from typer.testing import CliRunner

from miscreen.cli.verify import app
from miscreen.config import load_config
from miscreen.pipeline.verification import choose_md, plan_md, read_md_plan
from miscreen.verify.md_protocol import QUICK
from miscreen.verify.md_run import MDCandidate
from miscreen.verify.md_tasks import task_progress

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
    cfg = load_config(path)
    array_script, analyze_script = cfg.run.md_array_script, cfg.run.md_analyze_script
    assert calls[0].endswith(str(array_script)) and calls[1].endswith(str(analyze_script))
    assert array_script.name == "md-array.sh" and array_script.parent == cfg.run.slurm
    assert "--dependency=afterany:501" in calls[1]
    plan = read_md_plan(cfg)
    assert len(plan.tasks) == 6 and plan.protocol.name == "quick"
    assert plan.tasks[0].endswith(f"/{QUICK.temperatures_k[0]:g}K")
    assert "#SBATCH --array=0-5%4" in array_script.read_text()
    assert "verify md-analyze" in analyze_script.read_text()


def test_without_a_ranked_run_the_ids_are_required(tmp_path):
    result = runner.invoke(app, ["md", str(config(tmp_path)), "--top", "2", "--dry-run"])
    assert result.exit_code == 1
    assert "candidates.parquet does not exist" in result.output


def test_an_array_task_runs_its_task_stops_at_a_time_limit_and_resumes(tmp_path, monkeypatch):
    """What each array task runs: ``md-task`` picks its task from SLURM_ARRAY_TASK_ID,
    stops cleanly at a checkpoint past --time-limit-s, and the next call finishes it."""
    from pymatgen.core import Structure

    from .test_md import STRUCTURES, TINY

    path = config(tmp_path)
    cfg = load_config(path)
    li2o = Structure.from_file(STRUCTURES / "Li2O.json") * (2, 1, 1)
    plan, _ = plan_md(cfg, [MDCandidate("pymatgen:Li2O", li2o)], TINY)
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    result = runner.invoke(app, ["md-task", str(path), "--device", "cpu", "--time-limit-s", "0"])
    assert result.exit_code == 0, result.output
    assert "task 1 (" in result.output and "1000K): step 10/120, stopped" in result.output
    result = runner.invoke(app, ["md-task", str(path), "--device", "cpu"])
    assert result.exit_code == 0 and "step 120/120, finished" in result.output
    assert task_progress(plan.task_dir(cfg.run.md, 0)) == 0  # task 0 was not touched
    result = runner.invoke(app, ["md-task", str(path), "--index", "2"])
    assert result.exit_code == 1 and "task 2 does not exist (the plan has 2)" in result.output


def test_top_candidates_come_ranked_with_their_ml_prediction(tmp_path):
    import pandas as pd

    from miscreen import atomic_io

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
    choice = choose_md(cfg, "quick", top=3)
    chosen, failures = choice.candidates, choice.failures
    assert [c.id for c in chosen] == ["pymatgen:Li10GeP2S12", "pymatgen:LiFePO4"]
    assert chosen[0].ml == (-2.0, -3.0, -1.0)
    assert list(failures["id"]) == ["mp-x"]  # ranked, but not in the configured sources
    assert "not in the configured sources" in failures["reason"].iloc[0]


def test_bvse_and_md_pick_the_same_top_candidates_by_rank_not_by_row_order(tmp_path, monkeypatch):
    """ "Pick the top N" is one function: both checks take the best ranks, wherever their rows
    stand in candidates.parquet (BVSE used to take the first rows)."""
    import pandas as pd
    import pytest

    from miscreen import atomic_io
    from miscreen.pipeline import verification

    cfg = load_config(config(tmp_path))
    ranked = pd.DataFrame(
        {
            "id": ["pymatgen:LiFePO4", "pymatgen:Li2O", "pymatgen:Li10GeP2S12"],
            "rank": [3.0, 2.0, 1.0],
        }
    )
    atomic_io.write_table(ranked, cfg.run.candidates_parquet)
    best = ["pymatgen:Li10GeP2S12", "pymatgen:Li2O"]
    assert verification.top_ids(ranked, 2) == best
    assert [c.id for c in choose_md(cfg, "quick", top=2).candidates] == best

    seen = []

    def barrier_table(records, **_):
        seen.extend(records["id"])
        raise RuntimeError("stop here")

    monkeypatch.setattr(verification, "barrier_table", barrier_table)
    with pytest.raises(RuntimeError, match="stop here"):
        verification.verify_bvse_stage(cfg, 2)
    assert sorted(seen) == sorted(best)
