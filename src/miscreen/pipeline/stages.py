"""Wiring of the stages for one configured run: read the config, call stage functions,
decide what is written where (through the run catalog). The science lives in the stages.

    fetch (sources) -> featurize -> train -> screen (batch: chunks, checkpoints) -> report
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from miscreen import atomic_io, batch
from miscreen import schema as S
from miscreen.catalog import unique_inputs
from miscreen.config import Config
from miscreen.featurize import FeatureOptions
from miscreen.fetch.sources import Loaded, load_labelled
from miscreen.pipeline.importances import importance_stage
from miscreen.report import build_report
from miscreen.screen.known import KNOWN_COLUMNS
from miscreen.screen.predict import predict_records
from miscreen.train.evaluate import BASELINE_LABELS, PUBLISHED_BASELINES, test_metrics
from miscreen.train.model_folders import hold_model_folder
from miscreen.train.routing import TrainResult, fit_models, save_models

log = logging.getLogger(__name__)


def feature_options(cfg: Config) -> FeatureOptions:
    """The run's featurization settings: workers, feature cache, per-structure limit."""
    return FeatureOptions(cfg.features.jobs, cfg.cache_path, cfg.features.time_limit_s)


def train(cfg: Config, labelled: Loaded) -> TrainResult:
    """Fit the run's models on ``labelled`` rows; nothing is written (see :func:`train_stage`)."""
    return fit_models(
        labelled.records,
        preset=cfg.features.preset,
        model=cfg.model,
        seed=cfg.seed,
        censored=cfg.data.censored,
        features=feature_options(cfg),
        inputs=labelled.inputs,
    )


def predict(cfg: Config, models: TrainResult, records: pd.DataFrame, interval: float | None = None):
    """Predict ``records`` with ``models`` under the run's settings -> (predicted, failures)."""
    return predict_records(
        models,
        records,
        cfg.model.interval if interval is None else interval,
        feature_options(cfg),
        cfg.screen.fast_log10_sigma,
    )


def evaluate(
    cfg: Config, models: TrainResult, test: Loaded
) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Predict labelled test rows -> (metrics, test predictions, failures)."""
    predicted, failures = predict(cfg, models, test.records)
    metrics = test_metrics(predicted, cfg.model.interval, cfg.screen.fast_log10_sigma)
    predicted[S.HAS_STRUCTURE] = S.has_structure(predicted)
    return metrics, predicted.reindex(columns=list(S.TEST_PREDICTION_COLUMNS)), failures


def train_stage(cfg: Config) -> dict:
    """Fit and save the models, evaluate on the test split; writes metrics, test
    predictions, failures and the manifest entry. The model folder's writer lock is held
    from the start, so a second ``train`` or ``run`` of the same run fails at once."""
    with hold_model_folder(cfg.models):
        return _train_and_evaluate(cfg)


def _train_and_evaluate(cfg: Config) -> dict:
    labelled = load_labelled(cfg, cfg.data.train_split)
    models = save_models(train(cfg, labelled), cfg.models)
    cv = models.cv
    cv_mae, cv_n = models.routed_cv
    metrics: dict = {
        "cv_mae": cv_mae,  # DOI-grouped, each row by the model its input kind is served by
        "cv_n": cv_n,
        "cv_by_model": cv,
        "routing": models.routing,
        "censored_policy": cfg.data.censored,
    }
    failures = [labelled.failures, models.failures]
    inputs = list(labelled.inputs)
    measured = [labelled.records]
    if cfg.data.test_split is not None:
        test = load_labelled(cfg, cfg.data.test_split)
        test_m, test_pred, test_fail = evaluate(cfg, models, test)
        metrics |= test_m
        failures += [test.failures, test_fail]
        inputs += test.inputs
        measured.append(test.records)
        atomic_io.write_table(test_pred, cfg.run.test_predictions)
    atomic_io.write_table(known_materials(measured), cfg.run.known_materials)
    atomic_io.write_json(cfg.run.metrics, metrics)
    cfg.run.write_failures("train", pd.concat(failures, ignore_index=True))
    entry = {
        "inputs": unique_inputs(inputs),
        "models": {m.name: str(cfg.models.model(m.name).root) for m in models.models.values()},
        "model_sha256": {
            kind: models.for_kind(kind).meta["model_sha256"] for kind in models.routing
        },
        "training_rows": len(labelled.records),
    }
    write_manifest(cfg, "train", entry)
    return metrics


def screen_stage(
    cfg: Config, backend: str | None = None, scheduler: str | None = None
) -> pd.DataFrame:
    """Predict and rank the configured candidates with the run's saved models, through the
    streaming, checkpointed batch path (one shard of one, then the merge)."""
    with batch.backend_for(cfg, backend, scheduler) as executor:  # type: ignore[arg-type]
        return batch.screen_all(cfg, executor)


def known_materials(measured: list[pd.DataFrame]) -> pd.DataFrame:
    """The measured materials of a run (its labelled rows, each id once), as the screen's
    known-material exclusion and ``suggest`` read them."""
    known = pd.concat(measured, ignore_index=True).reindex(columns=list(KNOWN_COLUMNS))
    return known.drop_duplicates(S.ID)


def published_baselines() -> dict[str, float]:
    """The published OBELiX baselines the report shows beside the run's metrics."""
    return {BASELINE_LABELS[k]: v for k, v in PUBLISHED_BASELINES.items()}


def report_stage(cfg: Config, importances: bool | None = None) -> Path:
    """Render ``report.html`` from the run folder's files; first, when ``importances``
    (default ``report.importances``), compute the permutation importances into the run
    folder (kept there: the report shows them on every later render)."""
    wanted = cfg.report.importances if importances is None else importances
    if wanted:
        importance_stage(cfg, feature_options(cfg))
    path = build_report(cfg.run.root, top_k=cfg.screen.top_k, baselines=published_baselines())
    write_manifest(cfg, "report", {"report": str(path), "importances": wanted})
    return path


def run(cfg: Config, config_path: Path | None = None) -> Path:
    """Train, evaluate, screen and report; every output lands in ``results/<run_name>/``.
    The model folder's lock is held throughout, so no other ``train`` swaps the models
    while this run screens with them."""
    np.random.seed(cfg.seed)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    write_manifest(cfg, "run", {"config_path": str(config_path) if config_path else None})
    with hold_model_folder(cfg.models):
        train_stage(cfg)
        screen_stage(cfg)
    report_stage(cfg)
    return cfg.run_dir


def write_manifest(cfg: Config, stage: str, entry: dict) -> None:
    cfg.run.update_manifest(
        cfg.model_dump(mode="json"), cfg.seed, stage, {**entry, "folders": cfg.folders()}
    )
