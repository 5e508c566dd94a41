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


def _records() -> pd.DataFrame:
    """Three of pymatgen's example structures and a rock-salt LiCl cell (the slow one)."""
    from pymatgen.core import Lattice, Structure

    from miscreen.fetch.pymatgen_examples import load_pymatgen_examples

    small, _ = load_pymatgen_examples(("Li2O", "LiFePO4", "Li3V2(PO4)3"))
    licl = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.13), ["Li", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    row = {"id": "slow-licl", "source": "test", "composition": "LiCl"}
    row["structure"] = json.dumps(licl.as_dict())
    return pd.concat([small, pd.DataFrame([row])], ignore_index=True)


def test_a_slow_structure_is_stopped_on_dask_workers(cluster):
    """Dask runs tasks in worker threads, where SIGALRM cannot reach: the per-structure time
    limit must still stop a slow structure, report it in failures, and let the rest finish.
    The slow one spins in Python for a minute inside the structure featurizer (patched on
    the worker for this task only), so the 2 s limit has a wide margin either way."""
    from miscreen.featurize import FeatureOptions

    records = _records()
    with cluster.get_client() as client:
        limited = FeatureOptions(time_limit=2.0)
        future = client.submit(_featurize_with_one_slow, records, limited, pure=False)
        features, failures, seconds, on_main = future.result()
    assert not on_main  # the task really ran in a worker thread
    assert sorted(features.index) == sorted(records["id"].head(3))
    assert failures["id"].tolist() == ["slow-licl"]
    assert "time limit" in failures["reason"].iloc[0]
    assert seconds < 45  # stopped, not spun out


def _featurize_with_one_slow(records: pd.DataFrame, options) -> tuple:
    """On a worker: the full preset with the structure featurizer spinning for 60 s on
    LiCl, restored afterwards -> (features, failures, seconds, ran on the main thread)."""
    import threading
    import time

    from miscreen.featurize import featurize_records
    from miscreen.featurize.structure import StructureFeaturizer

    original = StructureFeaturizer.featurize

    def slow(self, entry):
        if entry.composition.reduced_formula == "LiCl":
            end = time.perf_counter() + 60
            while time.perf_counter() < end:  # Python bytecode: the limit can stop it
                pass
        return original(self, entry)

    StructureFeaturizer.featurize = slow
    start = time.perf_counter()
    try:
        features, failures, _ = featurize_records(records, "full", options)
    finally:
        StructureFeaturizer.featurize = original
    on_main = threading.current_thread() is threading.main_thread()
    return features, failures, time.perf_counter() - start, on_main


def _imported(names: list[str]) -> dict[str, bool]:
    import sys

    return {n: n in sys.modules for n in names}


def test_worker_preload_imports_what_a_chunk_needs():
    """``dask worker --preload miscreen.batch.preload``: the first chunk finds scikit-learn,
    skops, matminer and pyarrow's Parquet reader already imported."""
    from distributed import LocalCluster

    names = ["skops.io", "sklearn.ensemble", "matminer.featurizers.composition", "pyarrow.parquet"]
    with (
        LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            preload=["miscreen.batch.preload"],
        ) as c,
        c.get_client() as client,
    ):
        found = next(iter(client.run(_imported, names).values()))
    assert found == dict.fromkeys(names, True)


def test_jobqueue_workers_get_the_preload_once_and_the_lean_settings():
    from miscreen.batch.backends import lean_worker_environment, worker_options

    assert worker_options({"cores": 1})["worker_extra_args"] == [
        "--preload",
        "miscreen.batch.preload",
    ]
    own = {
        "worker_extra_args": ["--lifetime", "1h", "--preload", "miscreen.batch.preload"],
        "job_script_prologue": ["module load python"],
    }
    options = worker_options(own)
    assert options["worker_extra_args"] == own["worker_extra_args"]
    # the user's own prologue lines come last, so their exports win
    assert options["job_script_prologue"] == [*lean_worker_environment(), "module load python"]


def test_lean_worker_environment_is_read_by_dask_as_the_lean_config():
    """The job script's ``export`` lines, parsed by Dask's own environment reader, give
    :data:`LEAN_WORKER_CONFIG`; and dask-jobqueue writes them into the worker job script."""
    import dask
    from dask_jobqueue import SLURMCluster

    from miscreen.batch.backends import LEAN_WORKER_CONFIG, lean_worker_environment, worker_options

    env = dict(line.removeprefix("export ").split("=", 1) for line in lean_worker_environment())
    assert all(name.startswith("DASK_DISTRIBUTED__") for name in env)
    read = dask.config.collect_env(env)
    for key, value in LEAN_WORKER_CONFIG.items():
        assert dask.config.get(key, config=read) == value, key
    options = worker_options({"cores": 1, "memory": "1GB", "processes": 1})
    with SLURMCluster(**options, scheduler_options={"dashboard_address": ":0"}) as cluster:
        script = cluster.job_script()
    assert all(line in script for line in lean_worker_environment()), script


def _worker_config() -> dict:
    import dask

    from miscreen.batch.backends import LEAN_WORKER_CONFIG

    return {key: dask.config.get(key) for key in LEAN_WORKER_CONFIG}


def test_a_local_cluster_started_under_the_lean_config_passes_it_to_its_workers():
    """How ``benchmarks/scale.py`` gives its LocalCluster's worker processes the settings
    that miscreen's SLURMCluster workers get from their job scripts."""
    import dask
    from distributed import LocalCluster

    from miscreen.batch.backends import LEAN_WORKER_CONFIG

    with (
        dask.config.set(LEAN_WORKER_CONFIG),
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as c,
        c.get_client() as client,
    ):
        seen = next(iter(client.run(_worker_config).values()))
    assert seen == LEAN_WORKER_CONFIG
