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

from miscreen import atomic_io
from miscreen import schema as S
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

COMPOSITION_MODEL = "composition"  # the composition alone (preset "composition")
CELL_MODEL = "cell"  # composition + space group and lattice (preset "cell")
STRUCTURE_MODEL = "structure"  # everything, positions included (the run's preset)
STRUCTURE_ROWS = "structure_rows"
CELL_ROWS = "cell_rows"
COMPOSITION_ROWS = "composition_rows"
ROW_KINDS = (STRUCTURE_ROWS, CELL_ROWS, COMPOSITION_ROWS)
# the models a row of each kind may use: only models whose features the row has
USABLE = {
    STRUCTURE_ROWS: (STRUCTURE_MODEL, CELL_MODEL, COMPOSITION_MODEL),
    CELL_ROWS: (CELL_MODEL, COMPOSITION_MODEL),
    COMPOSITION_ROWS: (COMPOSITION_MODEL,),
}


def row_kinds(records: pd.DataFrame) -> pd.Series:
    """Each row's input kind: a structure; no structure but a space group or lattice (as
    OBELiX gives for every row); or a composition alone (a list of formulas)."""
    cell = pd.Series(False, index=records.index)
    for col in (S.SPACEGROUP, *S.LATTICE):
        if col in records:
            cell |= pd.to_numeric(records[col], errors="coerce").notna()
    kinds = pd.Series(COMPOSITION_ROWS, index=records.index, dtype=object)
    kinds[cell] = CELL_ROWS
    kinds[S.has_structure(records)] = STRUCTURE_ROWS
    return kinds


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

    @property
    def routed_cv(self) -> tuple[float, int]:
        """(MAE, rows) of the out-of-fold predictions of the whole routed system: each
        training row by the model its kind is served by."""
        total = rows = 0
        for choice in self.routing.values():
            err = (choice.get("cv_mae") or {}).get(choice["model"])
            if choice["rows"] and err is not None:
                total += err * choice["rows"]
                rows += choice["rows"]
        return (total / rows if rows else float("nan")), rows


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
            "training_data_sha256": atomic_io.sha256_frame(labels[[S.TARGET]].reset_index()),
            "training_inputs": inputs or [],
            "metrics": cv,
        }
        models[name] = TrainedModel(estimator, schema, meta)
        log.info("%s model: %d rows, CV MAE %.3f", name, len(labels), cv["cv_mae"])
    routing = choose_routing(oof, kinds)
    return TrainResult(models, routing, S.concat(*failures))


def choose_routing(oof: dict[str, pd.Series], kinds: pd.Series) -> dict[str, dict]:
    """Per row kind, among the models whose features such rows have, the one with the lowest
    mean out-of-fold error on training rows of that kind; with no such rows, the one that
    sees the most of them (structure, then cell, then composition)."""
    routing: dict[str, dict] = {}
    for kind in ROW_KINDS:
        usable = [n for n in USABLE[kind] if n in oof]
        ids = kinds.index[kinds == kind]
        errs = {n: float(oof[n].reindex(ids).mean()) if len(ids) else None for n in usable}
        scored = {n: e for n, e in errs.items() if e is not None and np.isfinite(e)}
        best = min(scored, key=lambda n: (scored[n], n)) if scored else usable[0]
        routing[kind] = {"model": best, "cv_mae": errs, "rows": len(ids)}
        log.info(
            "%s: the %s model (grouped-CV MAE on %d such rows: %s)", kind, best, len(ids), errs
        )
    return routing


def save_models(result: TrainResult, catalog: ModelCatalog) -> TrainResult:
    """Write every model and ``routing.json`` into a fresh folder beside ``catalog.root``,
    then swap it in: a killed save leaves the old models (or none), never a mix.
    -> the result with each saved file's sha256 in its models' metadata."""
    root = Path(catalog.root)
    staging = ModelCatalog(root.with_name(f".{root.name}.new-{uuid.uuid4().hex[:8]}"))
    try:
        saved = {name: save_model(staging.model(name), m) for name, m in result.models.items()}
        atomic_io.write_json(staging.routing, result.routing)
    except BaseException:
        shutil.rmtree(staging.root, ignore_errors=True)
        raise
    old = root.with_name(f".{root.name}.old-{uuid.uuid4().hex[:8]}")
    if root.exists():
        os.replace(root, old)
    os.replace(staging.root, root)
    shutil.rmtree(old, ignore_errors=True)
    return TrainResult(saved, result.routing, result.failures)


def read_routing(catalog: ModelCatalog) -> dict[str, dict]:
    """``routing.json`` of a model folder, checked; a clear error when it is not one."""
    if not catalog.routing.is_file():
        leftover = sorted(Path(catalog.root).parent.glob(f".{Path(catalog.root).name}.old-*"))
        hint = (
            f"; a save was interrupted after moving the previous models to {leftover[0]}: "
            f"rename it back to {catalog.root} to use them"
            if leftover
            else ""
        )
        raise ModelLoadError(
            f"{catalog.root} holds no trained models (no {catalog.routing.name}){hint}; train "
            f"them with `miscreen train CONFIG` or `miscreen train --data FILE --out "
            f"{catalog.root}`"
        )
    try:
        routing = atomic_io.read_json(catalog.routing)
    except ValueError as exc:
        raise ModelLoadError(f"{catalog.routing} is not valid JSON ({exc}); retrain") from None
    if not isinstance(routing, dict) or not all(
        isinstance(routing.get(kind), dict) for kind in ROW_KINDS
    ):
        raise ModelLoadError(
            f"{catalog.routing} was written by an older miscreen (expected an entry per row "
            f"kind: {', '.join(ROW_KINDS)}); retrain the models in {catalog.root}"
        )
    for kind in ROW_KINDS:
        name = routing[kind].get("model")
        if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
            raise ModelLoadError(
                f"{catalog.routing}: the {kind} entry names {name!r}, not a model folder "
                f"inside {catalog.root}; retrain"
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
