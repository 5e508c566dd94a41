"""The models of a run: one per feature preset, and the routing that says which serves
rows with a structure and which rows without one.

Fitting is apart from saving: :func:`fit_models` returns a :class:`TrainResult` in memory;
:func:`save_models` writes it into a model folder (whole-folder swap, so a killed save
leaves the old models or none, never a mix); :func:`load_models` reads it back (both in
:mod:`miscreen.train.model_folders`; row kinds in :mod:`miscreen.train.row_kinds`).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from miscreen import atomic_io
from miscreen import schema as S
from miscreen.config import ModelConfig
from miscreen.errors import UserError
from miscreen.featurize import FeatureOptions, featurize_records
from miscreen.fetch.labels import apply_censoring
from miscreen.train.fit import fit_conformal
from miscreen.train.model_folders import (
    hold_model_folder,
    load_models,
    model_digests,
    read_routing,
    save_models,
)
from miscreen.train.persist import ModelLoadError, TrainedModel
from miscreen.train.row_kinds import (
    CELL_MODEL,
    CELL_ROWS,
    COMPOSITION_MODEL,
    COMPOSITION_ROWS,
    MODEL_NAMES,
    ROW_KINDS,
    STRUCTURE_MODEL,
    STRUCTURE_ROWS,
    USABLE,
    TrainResult,
    row_kinds,
)

__all__ = [
    "CELL_MODEL",
    "CELL_ROWS",
    "COMPOSITION_MODEL",
    "COMPOSITION_ROWS",
    "MODEL_NAMES",
    "ROW_KINDS",
    "STRUCTURE_MODEL",
    "STRUCTURE_ROWS",
    "USABLE",
    "ModelLoadError",
    "TrainResult",
    "choose_routing",
    "fit_models",
    "hold_model_folder",
    "load_models",
    "model_digests",
    "model_plan",
    "read_routing",
    "row_kinds",
    "save_models",
]

log = logging.getLogger(__name__)


def model_plan(preset: str, kinds: pd.Series) -> dict[str, str]:
    """Model name -> feature preset, for the input kinds the labelled rows have: a model
    per kind, each trained on every labelled row (all rows have a composition; OBELiX gives
    every row a cell; rows without positions carry a constant in the structure model)."""
    present = set(kinds)
    plan = {COMPOSITION_MODEL: COMPOSITION_MODEL}
    if present & {CELL_ROWS, STRUCTURE_ROWS}:
        plan[CELL_MODEL] = CELL_MODEL
    if STRUCTURE_ROWS in present and preset not in (COMPOSITION_MODEL, CELL_MODEL):
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
    kinds = row_kinds(labelled).set_axis(labelled[S.ID].astype(str))
    failures = [S.empty_failures()]
    models: dict[str, TrainedModel] = {}
    oof: dict[str, pd.Series] = {}
    for name, plan_preset in model_plan(preset, kinds).items():
        table, fails, schema = featurize_records(labelled, plan_preset, features)
        failures.append(fails)
        _enough_rows(name, table, labelled, fails, model.cv_folds)
        labels = labelled.set_index(S.ID).loc[table.index]
        estimator, cv = fit_conformal(table, labels, model, seed, features.jobs)
        oof[name] = pd.Series(np.abs(estimator.residuals_), index=table.index)
        meta = {
            "model": name,
            "preset": plan_preset,
            "config": model.model_dump(mode="json"),
            "seed": seed,
            "censored_policy": censored,
            "training_rows": len(labels),
            "training_data_sha256": atomic_io.sha256_frame(labels[[S.TARGET]].reset_index()),
            "training_inputs": inputs or [],
            "metrics": cv,
            # the rows a prediction can rest on (ConformalRegressor.analogues), in fit order
            "training_table": [
                [str(i), str(f), round(float(y), 3)]
                for i, f, y in zip(labels.index, labels[S.FORMULA], labels[S.TARGET], strict=True)
            ],
        }
        models[name] = TrainedModel(estimator, schema, meta)
        log.info("%s model: %d rows, CV MAE %.3f", name, len(labels), cv["cv_mae"])
    routing = choose_routing(oof, kinds)
    return TrainResult(models, routing, S.concat(*failures))


def _enough_rows(
    name: str, table: pd.DataFrame, labelled: pd.DataFrame, fails: pd.DataFrame, folds: int
) -> None:
    """``UserError`` when fewer rows were featurized than cross-validation needs."""
    if len(table) >= max(folds, 2):
        return
    example = f"; e.g. {fails.iloc[0]['id']}: {fails.iloc[0]['reason']}" if len(fails) else ""
    raise UserError(
        f"the {name} model: only {len(table)} of {len(labelled)} labelled rows could be "
        f"featurized, and {max(folds, 2)}-fold cross-validation (model.cv_folds) needs at "
        f"least {max(folds, 2)}{example}"
    )


def choose_routing(oof: dict[str, pd.Series], kinds: pd.Series) -> dict[str, dict]:
    """Per row kind, among the models whose features such rows have, the one with the lowest
    mean out-of-fold error on training rows of that kind; with no such rows, the one that
    sees the most of them (structure, then cell, then composition). ``rows`` counts the
    rows of that kind the chosen model was trained on (rows that failed featurization have
    no out-of-fold error and are not counted)."""
    routing: dict[str, dict] = {}
    for kind in ROW_KINDS:
        usable = [n for n in USABLE[kind] if n in oof]
        ids = kinds.index[kinds == kind]
        errs = {n: float(oof[n].reindex(ids).mean()) if len(ids) else None for n in usable}
        scored = {n: e for n, e in errs.items() if e is not None and np.isfinite(e)}
        best = min(scored, key=lambda n: (scored[n], n)) if scored else usable[0]
        used = int(oof[best].reindex(ids).notna().sum()) if len(ids) and best in oof else 0
        routing[kind] = {"model": best, "cv_mae": errs, "rows": used}
        unused = f", {len(ids) - used} not featurized" if used < len(ids) else ""
        log.info(
            "%s: the %s model (grouped-CV MAE on %d such rows%s: %s)",
            *(kind, best, used, unused, errs),
        )
    return routing
