"""Where chunks are screened: in this process (``local``) or on a Dask cluster (``dask``).

The unit of work is :func:`screen_chunk`: read the chunk's rows, predict them
(:func:`predict_chunk`: predictions without the structure column, and failures) and write
the chunk's checkpoint files. A :class:`Predictor` names the model folder, the interval and
the featurization options (feature cache, per-structure time limit). Dask workers do all of
it themselves and load the model directory once per worker process (sha256-verified joblib
files), so only chunk addresses and row counts travel and the client stays idle; the
structure store, the models and the results folder must be on a filesystem the workers
share, as on any HPC cluster.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from miscreen import atomic_io
from miscreen import schema as S
from miscreen.batch.chunks import Piece, read_chunk
from miscreen.catalog import ModelCatalog
from miscreen.config import Config, DaskConfig
from miscreen.featurize import FeatureOptions
from miscreen.screen.criteria import add_criteria
from miscreen.screen.known import KNOWN_MATCH, known_matches
from miscreen.screen.predict import predict_records
from miscreen.train.routing import TrainResult, load_models

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Predictor:
    """What screening a chunk needs besides its rows: the model folder (loaded once per
    process), the interval and the featurization options. Small enough to ship to workers."""

    model_dir: str
    interval: float
    features: FeatureOptions
    known: str | None = None  # the run's measured materials, to flag candidates that are one
    fast: float = S.FAST_LOG10_SIGMA  # log10 sigma of a fast conductor (p_fast)

    @classmethod
    def from_config(cls, cfg: Config) -> Predictor:
        known = cfg.run.known_materials.resolve() if cfg.screen.exclude_known else None
        return cls(
            str(Path(cfg.model_dir).resolve()),
            cfg.model.interval,
            FeatureOptions(
                jobs=cfg.features.jobs,
                cache_dir=Path(cfg.cache_path).resolve(),
                time_limit=cfg.features.time_limit_s,
            ),
            None if known is None else str(known),
            cfg.screen.fast_log10_sigma,
        )


@dataclass(frozen=True)
class ChunkTask:
    """One chunk to screen: its number, where its rows are, and its checkpoint files."""

    k: int
    pieces: list[Piece]
    columns: list[str]
    table: Path
    failures: Path


@dataclass(frozen=True)
class ChunkDone:
    """A screened chunk whose checkpoint files are written: its number and row counts."""

    k: int
    rows: int
    failures: int


_MODELS: dict[tuple[str, int], TrainResult] = {}


def cached_models(model_dir: str) -> TrainResult:
    """The run's models, loaded once per process (reloaded when ``routing.json`` changes)."""
    catalog = ModelCatalog(Path(model_dir))
    marker = catalog.routing
    key = (str(catalog.root.resolve()), marker.stat().st_mtime_ns if marker.exists() else 0)
    if key not in _MODELS:
        _MODELS.clear()
        _MODELS[key] = load_models(catalog)
    return _MODELS[key]


def predict_chunk(predictor: Predictor, records: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Predict one chunk -> (records without structures + prediction columns, failures)."""
    predicted, failures = predict_records(
        cached_models(predictor.model_dir),
        records,
        predictor.interval,
        predictor.features,
        predictor.fast,
    )
    base = [c for c in records.columns if c != S.STRUCTURE]
    known = {*base, *S.PREDICTION_COLUMNS, S.STRUCTURE}
    extra = [c for c in predicted.columns if c not in known]
    columns = base + list(S.PREDICTION_COLUMNS) + extra
    # the screen stage's row-wise criteria (site counts, supply risk, Li fraction, ...) are
    # added here, while the structures are at hand; merging keeps them and only ranks, so
    # the serial part of a sharded run stays small
    predicted = add_criteria(predicted.reindex(columns=[*columns, S.STRUCTURE]))
    if predictor.known is not None:  # needs the structures, so done here, chunk by chunk
        predicted[KNOWN_MATCH] = known_matches(predicted, Path(predictor.known))
    return predicted.drop(columns=[S.STRUCTURE]), failures.reset_index(drop=True)


def screen_chunk(predictor: Predictor, task: ChunkTask) -> ChunkDone:
    """Read, predict and checkpoint one chunk (failures first: the table marks it done)."""
    predicted, failures = predict_chunk(predictor, read_chunk(task.pieces, task.columns))
    atomic_io.write_table(failures, task.failures)
    atomic_io.write_table(predicted, task.table)
    return ChunkDone(task.k, len(predicted), len(failures))


class Backend(Protocol):
    """Maps :func:`screen_chunk` over chunk tasks; chunks may finish in any order."""

    def map(self, tasks: Iterator[ChunkTask]) -> Iterator[ChunkDone]: ...


class LocalBackend:
    """Chunks one after another in this process (featurization honours SLURM_CPUS_PER_TASK)."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor

    def map(self, tasks: Iterator[ChunkTask]) -> Iterator[ChunkDone]:
        for task in tasks:
            yield screen_chunk(self.predictor, task)


class DaskBackend:
    """Chunks on a Dask cluster, at most ``in_flight`` at once so memory stays bounded."""

    def __init__(self, client: Any, predictor: Predictor, per_thread: int = 2) -> None:
        self.client = client
        self.predictor = predictor
        self.per_thread = per_thread

    def in_flight(self) -> int:
        """Chunks to keep submitted: ``per_thread`` for every worker thread (at least 2)."""
        threads = sum(self.client.nthreads().values())
        return max(2, threads * self.per_thread)

    def map(self, tasks: Iterator[ChunkTask]) -> Iterator[ChunkDone]:
        from distributed import as_completed

        def submit(task: ChunkTask) -> Any:
            key = f"miscreen-chunk-{task.k}-{uuid.uuid4().hex}"
            return self.client.submit(screen_chunk, self.predictor, task, key=key, pure=False)

        pending = as_completed()
        for _ in range(self.in_flight()):
            nxt = next(tasks, None)
            if nxt is None:
                break
            pending.add(submit(nxt))
        for future in pending:
            done = future.result()
            future.release()
            nxt = next(tasks, None)
            if nxt is not None:
                pending.add(submit(nxt))
            yield done


PRELOAD = "miscreen.batch.preload"
# Dask's background work in each worker process, made lean: the statistical profiler (every
# thread's stack every 10 ms, read only by the dashboard's profile page), the event-loop
# tick (every 20 ms) and the memory monitor (every 100 ms). On chunks of the cheap preset they
# cost a worker about a tenth of its time (benchmarks/scale.py); on a 2-core machine only all
# three together made a difference. miscreen's SLURMCluster workers get them as environment
# variables (:func:`lean_worker_environment`), and so can any worker a user starts.
LEAN_WORKER_CONFIG: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
}


def lean_worker_environment() -> list[str]:
    """``export DASK_...=...`` lines that give a worker process :data:`LEAN_WORKER_CONFIG`
    (Dask reads them when it is imported: dots become ``__``, hyphens ``_``)."""
    return [
        f"export DASK_{key.upper().replace('.', '__').replace('-', '_')}={value}"
        for key, value in LEAN_WORKER_CONFIG.items()
    ]


def worker_options(jobqueue: dict[str, Any]) -> dict[str, Any]:
    """SLURMCluster arguments whose workers start with :mod:`miscreen.batch.preload` (added
    to ``worker_extra_args`` unless it is there already) and, in their job scripts, the
    lean background settings (added to ``job_script_prologue``; a user's own lines for the
    same variables come after them, so they win)."""
    extra = list(jobqueue.get("worker_extra_args") or [])
    if PRELOAD not in extra:
        extra += ["--preload", PRELOAD]
    prologue = [*lean_worker_environment(), *(jobqueue.get("job_script_prologue") or [])]
    return {**jobqueue, "worker_extra_args": extra, "job_script_prologue": prologue}


@contextmanager
def dask_client(settings: DaskConfig, scheduler: str | None = None) -> Iterator[Any]:
    """A Dask client: ``scheduler`` (or ``batch.dask.scheduler``), else a dask-jobqueue
    SLURMCluster built from ``batch.dask.jobqueue`` (its workers preloaded and lean:
    :func:`worker_options`); the cluster is closed afterwards."""
    from distributed import Client

    address = scheduler or settings.scheduler
    if address:
        with Client(address) as client:
            yield client
        return
    if settings.jobqueue is None:
        raise ValueError(
            "--backend dask needs a scheduler: pass --scheduler ADDRESS, or set "
            "batch.dask.scheduler or batch.dask.jobqueue (SLURMCluster arguments) in the config"
        )
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        raise ImportError(
            "batch.dask.jobqueue needs dask-jobqueue: pip install dask-jobqueue==0.9.0"
        ) from None
    with SLURMCluster(**worker_options(settings.jobqueue)) as cluster:
        cluster.scale(jobs=settings.jobs)
        with Client(cluster) as client:
            log.info("dask-jobqueue SLURMCluster: %d job(s) asked for; %s", settings.jobs, cluster)
            client.wait_for_workers(1)
            yield client
