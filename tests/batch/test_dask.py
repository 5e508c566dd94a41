"""The Dask backend on a real LocalCluster (2 worker processes, 1 thread each) gives the
same ranked outputs as the local backend; each worker loads the models itself."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from miscreen.cli import app


def _models_loaded() -> int:
    from miscreen.batch import backends

    return len(backends._MODELS)


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as c:
        yield c


def test_dask_backend_equals_local_backend(batch_run, cluster):
    config = batch_run.config("dask", chunk=20)
    result = CliRunner().invoke(
        app, ["screen", str(config), "--backend", "dask", "--scheduler", cluster.scheduler_address]
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    got = batch_run.root / "results" / "dask" / "batch" / "candidates.csv"
    assert got.read_bytes() == (batch_run.reference / "candidates.csv").read_bytes()
    with cluster.get_client() as client:
        loaded = client.run(_models_loaded)
    assert sorted(loaded.values()) == [1, 1]  # both workers predicted, each with its own models


def test_dask_without_a_scheduler_is_a_clear_error(batch_run):
    result = CliRunner().invoke(
        app, ["screen", str(batch_run.config("nodask")), "--backend", "dask"]
    )
    assert result.exit_code == 1
    assert "--scheduler ADDRESS" in result.output and "batch.dask.jobqueue" in result.output


SLOW = """
run_name: batch
seed: 0
results_dir: {root}/results/slow
models_dir: {root}/models
data: {{train: {root}/train.csv, test_split: null}}
features: {{preset: composition, time_limit_s: 1.0}}
model: {{kind: extra_trees, n_estimators: 20, cv_folds: 2}}
candidates:
  - kind: pymatgen
  - kind: csv
    path: {root}/slow.csv
"""


def test_a_slow_structure_is_stopped_on_dask_workers(batch_run, cluster):
    """Dask runs tasks in worker threads, where SIGALRM cannot reach: the per-structure time
    limit must still stop a slow structure, report it in failures, and let the rest finish."""
    from pymatgen.core import Lattice, Structure

    root = batch_run.root
    big = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.13), ["Li", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    big.make_supercell([6, 6, 6])  # 1728 sites: seconds of featurization, over the 1 s limit
    big.to(filename=str(root / "big.cif"))
    (root / "slow.csv").write_text("id,composition,structure\nbig-licl,LiCl,big.cif\n")
    config = root / "slow.yaml"
    config.write_text(SLOW.format(root=root))
    result = CliRunner().invoke(
        app, ["screen", str(config), "--backend", "dask", "--scheduler", cluster.scheduler_address]
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    run = root / "results" / "slow" / "batch"
    failures = pd.read_csv(run / "failures.csv").set_index("id")
    assert "time limit" in failures.loc["big-licl", "reason"]
    ranked = pd.read_csv(run / "candidates.csv")
    assert ranked["predicted_log10_sigma"].notna().sum() == 4  # pymatgen's four examples
