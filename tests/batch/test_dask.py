"""The Dask backend on a real LocalCluster (2 worker processes, 1 thread each) gives the
same ranked outputs as the local backend; each worker loads the models itself."""

from __future__ import annotations

import json

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


def _records(n_big: int = 6) -> pd.DataFrame:
    """Three of pymatgen's example structures and a slow one: a 1728-site LiCl supercell,
    compressed (Li-Cl 1.8 A) so each atom has hundreds of neighbours within 6 A."""
    from pymatgen.core import Lattice, Structure

    from miscreen.fetch.pymatgen_examples import load_pymatgen_examples

    small, _ = load_pymatgen_examples(("Li2O", "LiFePO4", "Li3V2(PO4)3"))
    big = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(3.6), ["Li", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    big.make_supercell([n_big] * 3)
    row = {"id": "big-licl", "source": "test", "composition": "LiCl"}
    row["structure"] = json.dumps(big.as_dict())
    return pd.concat([small, pd.DataFrame([row])], ignore_index=True)


def test_a_slow_structure_is_stopped_on_dask_workers(cluster):
    """Dask runs tasks in worker threads, where SIGALRM cannot reach: the per-structure time
    limit must still stop a slow structure, report it in failures, and let the rest finish."""
    from miscreen.featurize import FeatureOptions, featurize_records

    records = _records()
    with cluster.get_client() as client:
        warm = client.submit(featurize_records, records.head(3), "full", pure=False).result()
        assert len(warm[0]) == 3  # featurizers loaded on the worker, outside any limit
        # the supercell takes about 3-5 s warm, the small ones about 0.05 s each: a margin of
        # several times either way, so a busy machine does not flip the outcome
        limited = FeatureOptions(time_limit=2.0)
        future = client.submit(featurize_records, records, "full", limited, pure=False)
        features, failures, _ = future.result()
        on_main = client.submit(_on_main_thread, pure=False).result()
    assert not on_main  # the task really ran in a worker thread
    assert sorted(features.index) == sorted(records["id"].head(3))
    assert failures["id"].tolist() == ["big-licl"]
    assert "time limit" in failures["reason"].iloc[0]


def _on_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
