"""The SLURM paths against a real single-node cluster (``slurm_cluster.py``): job arrays
and their dependent jobs as users meet them, with cancelled and failing tasks, resubmission,
``verify md --slurm`` and Dask through dask-jobqueue's ``SLURMCluster``."""

from __future__ import annotations

import re
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from miscreen.cli import app
from tests.batch.slurm_cluster import REQUIRE, require_slurm

runner = CliRunner()

SUBMITTED = re.compile(r"submitted job array (\d+) and merge job (\d+) \(afterany:\1\)")

BATCH = """batch:
  chunk_size: {chunk}
  slurm:
    shards: {shards}
    time: "00:10:00"
    mem: 1G
    merge_mem: 1G
    setup: {setup}
"""


def slurm_config(batch_run, name: str, shards: int = 2, chunk: int = 40, setup: str = "[]"):
    """A config of the shared batch run, as a SLURM screening of ``shards`` array tasks."""
    path = batch_run.config(name, chunk)
    batch = BATCH.format(chunk=chunk, shards=shards, setup=setup)
    path.write_text(path.read_text().replace(f"batch: {{chunk_size: {chunk}}}\n", batch))
    return path


def submit(config: Path) -> tuple[str, str]:
    """``miscreen slurm submit CONFIG`` -> (array job id, merge job id)."""
    result = runner.invoke(app, ["slurm", "submit", str(config)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    found = SUBMITTED.search(result.output)
    assert found, result.output
    return found.group(1), found.group(2)


def run_folder(batch_run, name: str) -> Path:
    return batch_run.root / "results" / name / "batch"


def log_of(folder: Path, record: dict[str, str]) -> str:
    path = Path(record["StdOut"])
    assert path.parent == folder / "slurm", path  # the logs go to the run's slurm/ folder
    return path.read_text()


def test_a_missing_slurm_skips_with_how_to_install_it_or_fails_when_required(monkeypatch):
    monkeypatch.setattr("tests.batch.slurm_cluster.find", lambda name: None)
    monkeypatch.delenv(REQUIRE, raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"apt-get install slurm-wlm munge.*make test"):
        require_slurm()
    monkeypatch.setenv(REQUIRE, "1")
    with pytest.raises(pytest.fail.Exception, match=f"{REQUIRE}=1 but munged, .*sbatch"):
        require_slurm()


def test_node_is_this_machine(slurm):
    import os
    import socket

    node = slurm.run("scontrol", "show", "node", "-o")
    assert f"NodeName={socket.gethostname().split('.')[0]} " in node
    assert f"CPUTot={os.cpu_count()} " in node and "State=IDLE" in node


def test_array_and_merge_give_the_local_run_bytes(batch_run, slurm):
    config = slurm_config(batch_run, "slurm-real", shards=2)
    array, merge = submit(config)
    jobs = slurm.wait(array, merge)
    assert sorted(j["ArrayTaskId"] for j in jobs[array]) == ["0", "1"]
    assert {j["JobState"] for j in jobs[array] + jobs[merge]} == {"COMPLETED"}
    folder = run_folder(batch_run, "slurm-real")
    assert "shard 1/2 finished" in "".join(log_of(folder, j) for j in jobs[array])
    got = folder / "candidates.csv"
    assert got.read_bytes() == (batch_run.reference / "candidates.csv").read_bytes()


def test_a_failed_task_fails_the_merge_naming_its_shard(batch_run, slurm):
    """Array task 1 dies (exit 3) before it screens: the merge still runs (``afterany``: it
    never waits forever), refuses to merge the one shard there is, and names the task, its
    log and how to resume it."""
    setup = '["[ \\"${SLURM_ARRAY_TASK_ID:-}\\" != 1 ] || exit 3"]'
    config = slurm_config(batch_run, "slurm-fail", shards=2, setup=setup)
    array, merge = submit(config)
    jobs = slurm.wait(array, merge)
    tasks = {j["ArrayTaskId"]: j for j in jobs[array]}
    assert tasks["0"]["JobState"] == "COMPLETED"
    assert (tasks["1"]["JobState"], tasks["1"]["ExitCode"]) == ("FAILED", "3:0")
    (merged,) = jobs[merge]
    assert merged["JobState"] == "FAILED", merged
    folder = run_folder(batch_run, "slurm-fail")
    message = " ".join(log_of(folder, merged).split())
    assert f"job array {array}: task(s) 1 ended without finishing their shards" in message
    assert f"(log: {tasks['1']['StdOut']})" in message
    assert f"`miscreen slurm submit {config}` again resumes them" in message
    assert "2 shards: missing 1." in message
    assert not (folder / "candidates.csv").exists()  # no merge of partial shards


def wait_for_checkpoint(parts: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not any(parts.glob("chunk-*.failures.parquet")):
        assert time.monotonic() < deadline, f"no checkpoint in {parts} after {timeout} s"
        time.sleep(0.05)


def test_a_cancelled_task_resumes_from_its_checkpoints_when_submitted_again(batch_run, slurm):
    """scancel (the array and its merge) after the first chunk checkpoint: the shard is left
    unfinished; ``slurm submit`` again resumes it (not redoing the chunks it kept) and the
    merged table is the local run's, byte for byte."""
    config = slurm_config(batch_run, "slurm-cancel", shards=1, chunk=17)  # 11 chunks
    folder = run_folder(batch_run, "slurm-cancel")
    shard = folder / "shards" / "shard-0000-of-0001"
    array, merge = submit(config)
    wait_for_checkpoint(Path(f"{shard}.parts"))
    slurm.run("scancel", array, merge)
    jobs = slurm.wait(array, merge)
    assert [j["JobState"] for j in jobs[array] + jobs[merge]] == ["CANCELLED", "CANCELLED"]
    assert not Path(f"{shard}.json").exists()  # really stopped part-way
    kept = len(list(Path(f"{shard}.parts").glob("chunk-*.failures.parquet")))
    assert 1 <= kept < 11

    array, merge = submit(config)
    jobs = slurm.wait(array, merge)
    assert {j["JobState"] for j in jobs[array] + jobs[merge]} == {"COMPLETED"}
    log = log_of(folder, jobs[array][0])
    assert "17/186 rows (resumed from checkpoint)" in log, log  # chunk 0 was not redone
    assert "shard 0/1 finished" in log
    got = folder / "candidates.csv"
    assert got.read_bytes() == (batch_run.reference / "candidates.csv").read_bytes()


def test_dask_on_a_slurm_cluster_gives_the_local_run_bytes(batch_run, slurm, tmp_path):
    """``batch.dask.jobqueue``: dask-jobqueue's SLURMCluster starts its workers as SLURM
    jobs of this cluster."""
    config = batch_run.config("slurm-dask", chunk=20)
    jobqueue = (
        "batch:\n"
        "  chunk_size: 20\n"
        "  backend: dask\n"
        "  dask:\n"
        "    jobs: 2\n"
        "    jobqueue:\n"
        "      cores: 1\n"
        "      processes: 1\n"
        "      memory: 1GB\n"
        "      walltime: '00:10:00'\n"
        f"      python: {sys.executable}\n"
        f"      log_directory: {tmp_path / 'dask-logs'}\n"
        "      scheduler_options: {host: 127.0.0.1, dashboard_address: ':0'}\n"
    )
    config.write_text(config.read_text().replace("batch: {chunk_size: 20}\n", jobqueue))
    result = runner.invoke(app, ["screen", str(config)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    got = run_folder(batch_run, "slurm-dask") / "candidates.csv"
    assert got.read_bytes() == (batch_run.reference / "candidates.csv").read_bytes()
    logs = sorted((tmp_path / "dask-logs").glob("*.err"))
    assert len(logs) >= 1  # the workers ran as SLURM jobs
    text = "".join(p.read_text() for p in logs)
    assert "Run preload setup: miscreen.batch.preload" in text  # and were preloaded


MD_CONFIG = """run_name: md-slurm
results_dir: {root}/results
candidates:
  - kind: pymatgen
    names: [Li2O]
batch:
  slurm: {{time: "00:10:00", mem: 2G, merge_mem: 2G}}
"""


def test_verify_md_runs_as_an_array_with_its_analysis(slurm, tmp_path, monkeypatch):
    """``verify md --slurm`` on Li2O's 3-atom cell with a tiny protocol (two temperatures of
    20 steps, the ``quick`` protocol's name): one array task each, then the analysis job
    writes the tables."""
    from miscreen.config import load_config
    from miscreen.verify import md_protocol

    tiny = md_protocol.MDProtocol("test", (900.0, 1000.0), 0.0, 0.04, save_every=2)
    monkeypatch.setitem(md_protocol.PROTOCOLS, "quick", replace(tiny, checkpoint_every=10))
    path = tmp_path / "md.yaml"
    path.write_text(MD_CONFIG.format(root=tmp_path))
    result = runner.invoke(
        app, ["verify", "md", str(path), "--ids", "pymatgen:Li2O", "--slurm", "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    found = re.search(r"submitted MD array (\d+) \(2 tasks\) and analysis job (\d+)", result.output)
    assert found, result.output
    array, analysis = found.groups()
    jobs = slurm.wait(array, analysis, timeout=300)
    assert {j["JobState"] for j in jobs[array] + jobs[analysis]} == {"COMPLETED"}, jobs
    cfg = load_config(path)
    for record in jobs[array]:
        assert "step 20/20, finished" in Path(record["StdOut"]).read_text()
    assert cfg.run.md_summary.exists() and cfg.run.md_temperatures.exists()
