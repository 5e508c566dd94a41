"""The generation stage's relaxations on Dask (issue 24): a real LocalCluster (2 worker
processes, 1 thread each, as the screening's Dask tests) relaxes a tiny plan (Li2O and its
S and Se analogues, 3 FIRE steps) one task per candidate; the result files are a local
run's, a rerun submits nothing, and a candidate that raises is named while the others
finish."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from miscreen.cli import app
from miscreen.config import load_config
from miscreen.generate import relax
from miscreen.pipeline import generation, generation_jobs

CONFIG = """run_name: {name}
results_dir: {root}/results
cache_dir: {root}/cache
candidates:
  - kind: pymatgen
    names: [Li2O]
generate:
  parents: {{ids: ["pymatgen:Li2O"]}}
  substitutions: {{O: [S, Se]}}
  relax_steps: 3
  fmax: 1.0e-6
  drop_known: false
  bvse: false
"""
SELENIDE = "gen:pymatgen:Li2O:O->Se"


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as c:
        yield c


def config(root: Path, name: str) -> Path:
    path = root / f"{name}.yaml"
    path.write_text(CONFIG.format(root=root, name=name))
    return path


def results(folder: Path) -> dict[str, dict]:
    """The result files by name, without the seconds a relaxation took."""
    out = {}
    for path in sorted(folder.glob("relaxed-*.json")):
        doc = json.loads(path.read_text())
        doc["result"].pop("seconds")
        out[path.name] = doc
    return out


def test_dask_relaxes_like_a_local_run_and_a_rerun_submits_nothing(cluster, tmp_path):
    """``miscreen generate --scheduler``: each candidate relaxed by a worker (one torch
    thread, as the local path), with the local run's energies, forces, steps and cells to
    the bit; the finish writes the table here; a rerun finds every result and submits no
    task."""
    path = config(tmp_path, "dask")
    result = CliRunner().invoke(
        app, ["generate", str(path), "--scheduler", cluster.scheduler_address]
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    cfg = load_config(path)
    table = pd.read_csv(cfg.run.generated_csv)
    assert sorted(table["id"]) == ["gen:pymatgen:Li2O:O->S", SELENIDE, "pymatgen:Li2O"]
    assert (table["relax_steps"] == 3).all()

    local = load_config(config(tmp_path, "local"))
    generation_jobs.relax_local(local, generation.plan_generation(local), jobs=1)
    got, want = results(cfg.run.generate_relaxed), results(local.run.generate_relaxed)
    assert len(got) == 3 and got == want

    stamps = [p.stat().st_mtime_ns for p in sorted(cfg.run.generate_relaxed.iterdir())]
    with cluster.get_client() as client:
        submitted, failed = generation_jobs.relax_dask(cfg, generation.read_plan(cfg), client)
    assert (submitted, failed) == (0, {})
    assert [p.stat().st_mtime_ns for p in sorted(cfg.run.generate_relaxed.iterdir())] == stamps


def _fail_on_selenides(undo: bool = False) -> None:
    """On a worker: relaxing a selenide raises (``undo``: relaxations as they were)."""
    import miscreen.generate.relax as module

    if undo:
        module.relax_structure = module.relax_structure.original
        return
    original = module.relax_structure

    def failing(structure, settings, calc):
        if "Se" in structure.composition.chemical_system:
            raise RuntimeError("the potential blew up")
        return original(structure, settings, calc)

    failing.original = original
    module.relax_structure = failing


def test_a_failing_relaxation_is_named_and_the_others_finish(cluster, tmp_path):
    cfg = load_config(config(tmp_path, "fail"))
    plan = generation.plan_generation(cfg)
    with cluster.get_client() as client:
        client.run(_fail_on_selenides)
        try:
            submitted, failed = generation_jobs.relax_dask(cfg, plan, client)
        finally:
            client.run(_fail_on_selenides, True)
    assert submitted == 3
    assert list(failed) == [SELENIDE]
    assert "RuntimeError: the potential blew up" in failed[SELENIDE]
    done = sorted(p.name for p in cfg.run.generate_relaxed.glob("relaxed-*.json"))
    index = next(i for i, c in enumerate(plan["candidates"]) if c["id"] == SELENIDE)
    assert relax.result_path(cfg.run.generate_relaxed, index).name not in done
    assert len(done) == 2

    table = generation.finish_generation(cfg, predict=False, reasons=failed)
    assert SELENIDE not in set(table["id"]) and len(table) == 2
    failures = pd.read_parquet(cfg.run.stage_failures(generation.STAGE))
    assert failures["id"].tolist() == [SELENIDE]
    assert "the potential blew up; rerun to resume" in failures["reason"].iloc[0]


def test_relaxations_on_a_slurm_cluster_through_dask_jobqueue(slurm, tmp_path):
    """``batch.dask.jobqueue``: dask-jobqueue's SLURMCluster starts the worker as a SLURM
    job; ``batch.backend: dask`` makes it where ``miscreen generate`` relaxes (about 25 s)."""
    import sys

    path = config(tmp_path, "jobqueue")
    path.write_text(
        path.read_text() + "batch:\n  backend: dask\n  dask:\n    jobqueue:\n"
        "      cores: 1\n      processes: 1\n      memory: 2GB\n      walltime: '00:10:00'\n"
        f"      python: {sys.executable}\n      log_directory: {tmp_path / 'dask-logs'}\n"
        "      scheduler_options: {host: 127.0.0.1, dashboard_address: ':0'}\n"
    )
    result = CliRunner().invoke(app, ["generate", str(path)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    cfg = load_config(path)
    assert len(results(cfg.run.generate_relaxed)) == 3
    assert len(pd.read_csv(cfg.run.generated_csv)) == 3
    logs = "".join(p.read_text() for p in (tmp_path / "dask-logs").glob("*.err"))
    assert "Worker name:             SLURMCluster-0" in logs  # the only worker: a SLURM job
