"""Model directories: the fitted estimator, its feature schema and provenance.

A model folder may come from elsewhere, so loading it must never run code. The estimator
is saved with ``skops.io`` (a zip of JSON and ``.npy`` arrays, no pickle) and loaded with
exactly the types on :data:`~miscreen.train.trusted_types.TRUSTED_TYPES`, checked before
anything is imported or built (:mod:`miscreen.train.trusted_types`). Loaded trees and
neighbour indexes are then checked (:mod:`miscreen.train.fitted_checks`). ``model.json``
is read only up to ``MAX_META_BYTES``.

The sha256 that ``model.json`` records is checked too, but it sits in the same folder as
the file, so it only guards against accidents (a truncated copy, a file from another
model), not against an attacker.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from miscreen import atomic_io
from miscreen.catalog import ModelCatalog, ModelFolder
from miscreen.errors import ModelLoadError
from miscreen.featurize import FeatureSchema, feature_schema
from miscreen.train.fitted_checks import check_fitted_parts
from miscreen.train.model_card import model_card
from miscreen.train.trusted_types import (
    MAX_MODEL_BYTES,
    TRUSTED_TYPES,
    load_trusted,
    skops_io,
    untrusted_types,
)

__all__ = [
    "MAX_META_BYTES",
    "MAX_MODEL_BYTES",
    "TRUSTED_TYPES",
    "ModelLoadError",
    "TrainedModel",
    "describe_schema_change",
    "load_model",
    "model_card",
    "model_digest",
    "read_capped_json",
    "save_model",
]

MAX_META_BYTES = 16 << 20  # model.json: metadata, feature names, the tuning record


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


def save_model(folder: ModelFolder, model: TrainedModel) -> TrainedModel:
    """Write the estimator (skops), ``model.json`` and the model card; -> the model with the
    saved file's sha256 in its metadata."""
    sio = skops_io()
    folder.root.mkdir(parents=True, exist_ok=True)
    data = sio.dumps(model.estimator, compression=zipfile.ZIP_DEFLATED, compresslevel=3)
    unknown = untrusted_types(data=data)
    if unknown:
        raise TypeError(
            f"model {model.name!r} holds types not on miscreen's trusted list {unknown}; "
            f"review them and add them to TRUSTED_TYPES in miscreen/train/trusted_types.py"
        )
    with atomic_io.atomic_path(folder.estimator) as tmp:
        tmp.write_bytes(data)
    record = {
        **model.meta,
        "feature_schema": model.schema.to_dict(),
        "model_file": folder.estimator.name,
        "model_format": "skops",
        "model_sha256": atomic_io.sha256_file(folder.estimator),
        "packages": {**atomic_io.package_versions(), **atomic_io.package_versions(("skops",))},
    }
    atomic_io.write_json(folder.meta, record)
    atomic_io.write_text(folder.card, model_card(record))
    return TrainedModel(model.estimator, model.schema, record)


def read_capped_json(path: Path, limit: int) -> Any:
    """The JSON in ``path`` when it has at most ``limit`` bytes; ``ModelLoadError`` when it
    is bigger or not readable JSON."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise ModelLoadError(
                f"{path} has {size:,} bytes, more than a miscreen model folder ever writes "
                f"there (limit {limit:,}); refusing to read it. Retrain the model."
            )
        return atomic_io.read_json(path)
    except (ValueError, OSError) as exc:
        raise ModelLoadError(f"{path} is not readable JSON ({exc}); retrain") from None


def read_meta(folder: ModelFolder) -> dict:
    """``model.json`` as a dict; ``ModelLoadError`` when the folder is not a model folder."""
    if not folder.meta.is_file():
        hint = (
            " (it holds a model folder per model: pass the folder above it)"
            if ModelCatalog(folder.root).routing.is_file()
            else ""
        )
        raise ModelLoadError(
            f"{folder.root} is not a miscreen model directory (no {folder.meta.name}){hint}; "
            f"train one with `miscreen train` or `make screen`"
        )
    meta = read_capped_json(folder.meta, MAX_META_BYTES)
    if not isinstance(meta, dict):
        raise ModelLoadError(f"{folder.meta} is not a JSON object; retrain the model")
    return meta


def model_digest(folder: ModelFolder) -> str:
    """The sha256 ``model.json`` records for the estimator file (nothing is loaded)."""
    return str(read_meta(folder).get("model_sha256"))


def verify_files(folder: ModelFolder) -> dict:
    """``model.json`` of a folder whose estimator file matches its recorded sha256 and was
    written with this scikit-learn (nothing is loaded); ``ModelLoadError`` otherwise."""
    directory = folder.root
    meta = read_meta(folder)
    path = folder.estimator
    legacy = [p.name for p in directory.glob("*.joblib") if p != path]
    if not path.is_file():
        why = (
            f"it holds {legacy[0]}, a pickle written by an older miscreen, which is never "
            f"loaded because unpickling can run code"
            if legacy
            else f"{path.name} is missing"
        )
        raise ModelLoadError(f"{directory}: {why}; retrain the model with `miscreen train`")
    actual = atomic_io.sha256_file(path)
    if actual != meta.get("model_sha256"):
        raise ModelLoadError(
            f"{path}: sha256 {actual} does not match {folder.meta} ({meta.get('model_sha256')}); "
            f"the file was changed or replaced. Refusing to load it: retrain the model."
        )
    installed = atomic_io.package_versions(("scikit-learn",))["scikit-learn"]
    packages = meta.get("packages")
    trained = packages.get("scikit-learn") if isinstance(packages, dict) else None
    if trained != installed:
        raise ModelLoadError(
            f"{directory} was trained with scikit-learn {trained}, this environment has "
            f"{installed}; retrain the model (or install scikit-learn=={trained})."
        )
    return meta


def load_model(folder: ModelFolder) -> TrainedModel:
    """The model of ``folder``, loaded without running code from it; ``ModelLoadError``
    saying why and what to do when it must not be used."""
    meta = verify_files(folder)
    schema = _schema(meta, folder)
    estimator = _load_estimator(folder.estimator)
    _check_schema_width(estimator, schema, folder.root)
    return TrainedModel(estimator, schema, meta)


# Presets renamed in issue 21, so that each model kind and its preset share one name; a
# folder saved under the old names is refused with this hint (its features differ).
LEGACY_PRESETS = {
    "formula": "now `composition`",
    "composition": "`composition` now means the composition alone; the old one is `cell`",
}


def legacy_preset(meta: object) -> str | None:
    """The old preset name a model folder was saved under, or None: ``formula``, or
    ``composition`` with cell descriptors among its features (today's ``cell``)."""
    schema = meta.get("feature_schema") if isinstance(meta, dict) else None
    if not isinstance(schema, dict):
        return None
    preset, names = schema.get("preset"), schema.get("names") or []
    if preset == "formula":
        return preset
    if preset == "composition" and any(str(n).startswith("cell:") for n in names):
        return preset
    return None


def _schema(meta: dict, folder: ModelFolder) -> FeatureSchema:
    """The recorded feature schema, checked against what this miscreen computes."""
    if (old := legacy_preset(meta)) is not None:
        raise ModelLoadError(
            f"{folder.root} was trained with preset {old!r}, a name from before the presets "
            f"took their models' names ({LEGACY_PRESETS[old]}); retrain it with this miscreen "
            f"(`miscreen train`)"
        )
    try:
        saved = FeatureSchema.from_dict(meta["feature_schema"])
        current = feature_schema(saved.preset)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelLoadError(
            f"{folder.meta} has no usable feature schema ({type(exc).__name__}: {exc}); retrain"
        ) from None
    if saved != current:
        raise ModelLoadError(
            f"{folder.root}: {describe_schema_change(saved, current)}. Retrain the model with "
            f"this miscreen (`miscreen train`)."
        )
    return saved


def describe_schema_change(saved: FeatureSchema, current: FeatureSchema) -> str:
    """What differs between the schema a model was trained on and today's, in words."""
    return (
        f"the model was trained on preset {saved.preset!r} features that this miscreen no longer "
        f"computes the same way: {saved.difference(current) or 'the schemas differ'}"
    )


def _load_estimator(path: Path) -> Any:
    """skops-load ``path`` with exactly the trusted types, then check what was built."""
    from miscreen.train.estimators import ConformalRegressor

    estimator = load_trusted(path)
    if not isinstance(estimator, ConformalRegressor):
        raise ModelLoadError(
            f"{path} holds a {type(estimator).__name__}, not a miscreen ConformalRegressor"
        )
    try:
        check_fitted_parts(estimator)
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        raise ModelLoadError(f"{path} holds a damaged or crafted estimator: {exc}") from None
    return estimator


def _check_schema_width(estimator: Any, schema: FeatureSchema, directory: Path) -> None:
    width = getattr(estimator, "n_features_in_", None)
    if width != len(schema.names):
        raise ModelLoadError(
            f"{directory}: the estimator takes {width} features but model.json lists "
            f"{len(schema.names)}; the folder is inconsistent. Retrain the model."
        )
