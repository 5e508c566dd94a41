"""The Dask backend on a real LocalCluster (2 worker processes, 1 thread each) gives the
same ranked outputs as the local backend; each worker loads the models itself."""

from __future__ import annotations

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
