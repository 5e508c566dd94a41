"""``miscreen generate --slurm`` against a real single-node cluster (``slurm_cluster.py``): one
array task per candidate relaxation, then the finish job that places them on the hull and
writes the generated table; a resubmission skips the finished relaxations."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from miscreen.cli import app
from miscreen.config import load_config

runner = CliRunner()

CONFIG = """run_name: generate-slurm
results_dir: {root}/results
cache_dir: {root}/cache
candidates:
  - kind: pymatgen
    names: [Li2O]
generate:
  parents: {{ids: ["pymatgen:Li2O"]}}
  substitutions: {{O: [S]}}
  relax_steps: 3
  drop_known: false
  bvse: false
batch:
  slurm: {{time: "00:10:00", mem: 2G, merge_mem: 2G}}
"""

SUBMITTED = re.compile(r"submitted generate array (\d+) \((\d+) tasks\) and finish job (\d+)")


def submit(path: Path) -> tuple[str, str]:
    result = runner.invoke(app, ["generate", str(path), "--slurm"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    found = SUBMITTED.search(result.output)
    assert found and found.group(2) == "2", result.output
    return found.group(1), found.group(3)


def test_generate_runs_as_an_array_with_its_finish_job(slurm, tmp_path):
    path = tmp_path / "generate.yaml"
    path.write_text(CONFIG.format(root=tmp_path))
    cfg = load_config(path)
    array, finish = submit(path)
    jobs = slurm.wait(array, finish, timeout=300)
    assert {j["JobState"] for j in jobs[array] + jobs[finish]} == {"COMPLETED"}, jobs
    for record in jobs[array]:
        assert "steps" in Path(record["StdOut"]).read_text()
    assert Path(jobs[finish][0]["StdOut"]).parent == cfg.run.slurm.resolve()
    table = pd.read_csv(cfg.run.generated_csv)
    assert sorted(table["id"]) == ["gen:pymatgen:Li2O:O->S", "pymatgen:Li2O"]
    assert (table["relax_steps"] <= 3).all() and table["relax_max_force_ev_a"].notna().all()
    # the only reference phase is Li2O itself, left out of its own hull: no hull for either
    assert set(table["stability_method"]) == {"none: incomplete hull"}
    done = sorted(cfg.run.generate_relaxed.glob("relaxed-*.json"))
    stamps = [p.stat().st_mtime_ns for p in done]
    assert len(done) == 2
    # submitted again: the tasks find their results and the finish job rewrites the table
    array, finish = submit(path)
    jobs = slurm.wait(array, finish, timeout=300)
    assert {j["JobState"] for j in jobs[array] + jobs[finish]} == {"COMPLETED"}, jobs
    assert [p.stat().st_mtime_ns for p in done] == stamps
