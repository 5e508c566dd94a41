"""Model directories: the fitted estimator, its feature schema and provenance.

``model.joblib`` is only unpickled after its sha256 matches the one recorded in
``model.json`` and the recorded scikit-learn version matches the installed one, so a file
from elsewhere is never unpickled blindly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import joblib

from miscreen import store
from miscreen.catalog import ModelFolder
from miscreen.featurize import FeatureSchema


@dataclass(frozen=True)
class TrainedModel:
    """A fitted model, its feature schema and its provenance (``meta``: name, preset,
    config, CV metrics; once saved also ``model_sha256`` and package versions)."""

    estimator: Any  # a fitted ConformalRegressor
    schema: FeatureSchema
    meta: dict

    @property
    def name(self) -> str:
        return str(self.meta["model"])


class ModelLoadError(RuntimeError):
    """A model directory that must not be used; the message says why and what to do."""


def save_model(folder: ModelFolder, model: TrainedModel) -> TrainedModel:
    """Write the estimator, ``model.json`` and the model card; -> the model with the saved
    file's sha256 in its metadata."""
    folder.root.mkdir(parents=True, exist_ok=True)
    with store.atomic_path(folder.estimator) as tmp:
        joblib.dump(model.estimator, tmp, compress=3)
    record = {
        **model.meta,
        "feature_schema": model.schema.to_dict(),
        "model_file": folder.estimator.name,
        "model_sha256": store.sha256_file(folder.estimator),
        "packages": store.package_versions(),
    }
    store.write_json(folder.meta, record)
    store.write_text(folder.card, model_card(record))
    return TrainedModel(model.estimator, model.schema, record)


def model_card(record: dict) -> str:
    """A short markdown model card from the saved metadata."""
    cv = record.get("metrics", {})
    lines = [
        f"# miscreen model `{record.get('model', '?')}`",
        "",
        "Predicts log10 of the room-temperature Li-ion conductivity (S/cm) with a "
        "cross-conformal interval and an out-of-domain flag.",
        "",
        f"- Features: preset `{record['feature_schema']['preset']}`, "
        f"{len(record['feature_schema']['names'])} descriptors, "
        f"schema version `{record['feature_schema']['version']}`",
        f"- Estimator: {record.get('config', {}).get('kind', '?')} "
        f"({record.get('config', {}).get('n_estimators', '?')} trees), seed {record.get('seed')}",
        f"- Hyperparameters: {_hyperparameters(cv)}",
        f"- Training rows: {record.get('training_rows')} "
        f"(sha256 of labels {str(record.get('training_data_sha256'))[:16]}...), "
        f"censored values: `{record.get('censored_policy')}`",
        f"- {cv.get('cv_scheme', 'CV')}: MAE {cv.get('cv_mae', float('nan')):.3f}, "
        f"Spearman {cv.get('cv_spearman', float('nan')):.3f}",
        f"- Model file sha256: `{record['model_sha256']}`; scikit-learn "
        f"{record['packages'].get('scikit-learn')}",
        "",
        "## Intended use and limits",
        "",
        "Ranking candidate solid electrolytes for experimental follow-up. Errors are about 1.5 "
        "orders of magnitude on new publications; rows flagged out of domain deserve extra "
        "doubt. Trained on experimental data from OBELiX (Therrien et al., Digital Discovery "
        "2026, CC BY 4.0) unless the training inputs in model.json say otherwise.",
        "",
    ]
    return "\n".join(lines)


def model_digest(folder: ModelFolder) -> str:
    """The sha256 ``model.json`` records for the estimator file (nothing is unpickled)."""
    if not folder.meta.is_file():
        raise ModelLoadError(f"{folder.root} is not a miscreen model directory (no model.json)")
    return str(store.read_json(folder.meta).get("model_sha256"))


def load_model(folder: ModelFolder) -> TrainedModel:
    directory = folder.root
    meta_path = folder.meta
    if not meta_path.is_file():
        raise ModelLoadError(
            f"{directory} is not a miscreen model directory (no {meta_path.name}); "
            f"train one with `miscreen train` or `make screen`"
        )
    meta = store.read_json(meta_path)
    path = folder.estimator
    actual = store.sha256_file(path) if path.is_file() else "missing"
    if actual != meta.get("model_sha256"):
        raise ModelLoadError(
            f"{path}: sha256 {actual} does not match {meta_path} ({meta.get('model_sha256')}); "
            f"the file was changed or replaced. Refusing to unpickle it: retrain the model."
        )
    installed = store.package_versions(("scikit-learn",))["scikit-learn"]
    trained = meta.get("packages", {}).get("scikit-learn")
    if trained != installed:
        raise ModelLoadError(
            f"{directory} was trained with scikit-learn {trained}, this environment has "
            f"{installed}; retrain the model (or install scikit-learn=={trained})."
        )
    return TrainedModel(joblib.load(path), FeatureSchema.from_dict(meta["feature_schema"]), meta)


def _hyperparameters(cv: dict) -> str:
    tuning = cv.get("hyperparameters", {})
    if tuning.get("recorded"):
        return f"{tuning['recorded']}, as recorded in the config (model.hyperparameters)"
    if not tuning.get("searched"):
        return "defaults (no search)"
    return (
        f"{tuning['best_params']}, chosen by {tuning['scheme']} (MAE {tuning['best_cv_mae']:.3f})"
    )
