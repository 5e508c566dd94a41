"""The models of a run: one per feature preset, and the routing that says which serves
rows with a structure and which rows without one.

Fitting is apart from saving: :func:`fit_models` returns a :class:`TrainResult` in memory;
:func:`save_models` writes it into a model folder (whole-folder swap, so a killed save
leaves the old models or none, never a mix); :func:`load_models` reads it back.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from miscreen import schema as S
from miscreen import store
from miscreen.catalog import ModelCatalog
from miscreen.config import ModelConfig
from miscreen.featurize import FeatureOptions, featurize_records
from miscreen.fetch.labels import apply_censoring
from miscreen.train.fit import fit_conformal
from miscreen.train.persist import (
    ModelLoadError,
    TrainedModel,
    load_model,
    model_digest,
    save_model,
)

log = logging.getLogger(__name__)

COMPOSITION_MODEL = "composition"
STRUCTURE_MODEL = "structure"
STRUCTURE_ROWS = "structure_rows"
COMPOSITION_ROWS = "composition_rows"
ROW_KINDS = (STRUCTURE_ROWS, COMPOSITION_ROWS)


@dataclass(frozen=True)
class TrainResult:
    """The fitted models by name, the routing of row kinds to them, and training failures.

    ``routing[kind]`` is ``{"model": name, "cv_mae": {name: mae}, "rows": n}``.
    """

    models: dict[str, TrainedModel]
    routing: dict[str, dict]
    failures: pd.DataFrame = field(default_factory=S.empty_failures)

    def for_kind(self, kind: str) -> TrainedModel:
        """The model that serves ``kind`` (``structure_rows`` or ``composition_rows``)."""
        return self.models[self.routing[kind]["model"]]

    @property
    def cv(self) -> dict[str, dict]:
        """Cross-validation metrics per model."""
        return {name: m.meta["metrics"] for name, m in self.models.items()}


def model_plan(preset: str) -> dict[str, str]:
    """Model name -> feature preset. Both models train on every labelled row: rows without
    a structure simply have no position-based features (a constant the trees can split on)."""
    plan = {COMPOSITION_MODEL: "composition"}
    if preset != "composition":
        plan[STRUCTURE_MODEL] = preset
    return plan


def fit_models(
    records: pd.DataFrame,
    *,
    preset: str,
    model: ModelConfig,
    seed: int,
    censored: str,
    features: FeatureOptions,
    inputs: list[dict] | None = None,
) -> TrainResult:
    """Fit every model of the plan on labelled ``records`` (nothing is written).

    Rows with a structure and rows without one are each served by the model with the lower
    grouped-CV (out-of-fold) error on training rows of that kind: a choice made on the
    training split alone.
    """
    labelled = apply_censoring(records, censored)  # type: ignore[arg-type]
    failures = [S.empty_failures()]
    models: dict[str, TrainedModel] = {}
    oof: dict[str, pd.Series] = {}
    for name, plan_preset in model_plan(preset).items():
        table, fails, schema = featurize_records(labelled, plan_preset, features)
        failures.append(fails)
        labels = labelled.set_index(S.ID).loc[table.index]
        estimator, cv = fit_conformal(table, labels, model, seed)
        oof[name] = pd.Series(np.abs(estimator.residuals_), index=table.index)
        meta = {
            "model": name,
            "preset": plan_preset,
            "config": model.model_dump(mode="json"),
            "seed": seed,
            "censored_policy": censored,
            "training_rows": len(labels),
            "training_data_sha256": store.sha256_frame(labels[[S.TARGET]].reset_index()),
            "training_inputs": inputs or [],
            "metrics": cv,
        }
        models[name] = TrainedModel(estimator, schema, meta)
        log.info("%s model: %d rows, CV MAE %.3f", name, len(labels), cv["cv_mae"])
    routing = choose_routing(oof, S.has_structure(labelled.set_index(S.ID)))
    return TrainResult(models, routing, S.concat(*failures))


def choose_routing(oof: dict[str, pd.Series], has_structure: pd.Series) -> dict[str, dict]:
    """Per row kind, the model with the lowest mean out-of-fold error on rows of that kind."""
    routing: dict[str, dict] = {}
    for kind, mask in ((STRUCTURE_ROWS, has_structure), (COMPOSITION_ROWS, ~has_structure)):
        ids = has_structure.index[mask]
        errs = {n: float(o.reindex(ids).mean()) for n, o in oof.items()}
        best = min(errs, key=lambda n: (np.nan_to_num(errs[n], nan=np.inf), n))
        routing[kind] = {"model": best, "cv_mae": errs, "rows": len(ids)}
        log.info("%s use the %s model (grouped-CV MAE on them: %s)", kind, best, errs)
    return routing


def save_models(result: TrainResult, catalog: ModelCatalog) -> TrainResult:
    """Write every model and ``routing.json`` into a fresh folder beside ``catalog.root``,
    then swap it in: a killed save leaves the old models (or none), never a mix.
    -> the result with each saved file's sha256 in its models' metadata."""
    root = Path(catalog.root)
    staging = ModelCatalog(root.with_name(f".{root.name}.new-{uuid.uuid4().hex[:8]}"))
    saved = {name: save_model(staging.model(name), m) for name, m in result.models.items()}
    store.write_json(staging.routing, result.routing)
    old = root.with_name(f".{root.name}.old-{uuid.uuid4().hex[:8]}")
    if root.exists():
        os.replace(root, old)
    os.replace(staging.root, root)
    shutil.rmtree(old, ignore_errors=True)
    return TrainResult(saved, result.routing, result.failures)


def read_routing(catalog: ModelCatalog) -> dict[str, dict]:
    """``routing.json`` of a model folder, checked; a clear error when it is not one."""
    if not catalog.routing.is_file():
        raise ModelLoadError(
            f"{catalog.root} holds no trained models (no {catalog.routing.name}); train them "
            f"with `miscreen train CONFIG` or `miscreen train --data FILE --out {catalog.root}`"
        )
    routing = store.read_json(catalog.routing)
    if not isinstance(routing, dict) or not all(
        isinstance(routing.get(kind), dict) for kind in ROW_KINDS
    ):
        raise ModelLoadError(
            f"{catalog.routing} was written by an older miscreen (expected an entry per row "
            f"kind: {', '.join(ROW_KINDS)}); retrain the models in {catalog.root}"
        )
    return routing


def load_models(catalog: ModelCatalog) -> TrainResult:
    """The models a trained run uses (sha256-verified) and their routing."""
    routing = read_routing(catalog)
    names = sorted({r["model"] for r in routing.values()})
    return TrainResult({n: load_model(catalog.model(n)) for n in names}, routing)


def model_digests(catalog: ModelCatalog) -> dict[str, str]:
    """Row kind -> sha256 of the model serving it, read from ``model.json`` (no unpickling)."""
    routing = read_routing(catalog)
    return {kind: model_digest(catalog.model(routing[kind]["model"])) for kind in ROW_KINDS}
