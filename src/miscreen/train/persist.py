"""Model directories: the fitted estimator, its feature schema and provenance.

A model folder may come from elsewhere, so loading it must never run code. The estimator
is saved with ``skops.io`` (a zip of JSON and ``.npy`` arrays, no pickle) and loaded only
when every type in it is on :data:`TRUSTED_TYPES`, checked before anything is imported or
built. Loaded trees are then checked for node indices that could make scikit-learn read
out of bounds or loop (skops warns that a crafted ``Tree`` can), and neighbour indexes are
rebuilt from their own training rows instead of trusting stored index arrays.

The sha256 that ``model.json`` records is checked too, but it sits in the same folder as
the file, so it only guards against accidents (a truncated copy, a file from another
model), not against an attacker.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from miscreen import atomic_io
from miscreen.catalog import ModelCatalog, ModelFolder
from miscreen.errors import UserError
from miscreen.featurize import FeatureSchema, feature_schema

# Every non-builtin type a miscreen model holds (all model kinds of ``train.model``),
# reviewed: scikit-learn estimators and their fitted parts, miscreen's own estimators,
# numpy containers. A type not listed here is refused at load, and saving checks that a
# model holds nothing else, so a new estimator class is noticed when it is first saved.
TRUSTED_TYPES: tuple[str, ...] = (
    # miscreen (src/miscreen/train/model.py)
    "miscreen.train.estimators.ConformalRegressor",
    "miscreen.train.estimators.MedianExtraTreesRegressor",
    # scikit-learn estimators
    "sklearn.pipeline.Pipeline",
    "sklearn.impute._base.SimpleImputer",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.preprocessing._function_transformer.FunctionTransformer",
    "sklearn.ensemble._forest.ExtraTreesRegressor",
    "sklearn.ensemble._forest.RandomForestRegressor",
    "sklearn.ensemble._voting.VotingRegressor",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor",
    "sklearn.tree._classes.DecisionTreeRegressor",
    "sklearn.tree._classes.ExtraTreeRegressor",
    "sklearn.neighbors._unsupervised.NearestNeighbors",
    # their fitted parts (trees are checked after loading, KD-trees rebuilt)
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn._loss.loss.HalfSquaredError",
    "sklearn._loss._loss.CyHalfSquaredError",
    "sklearn._loss.link.IdentityLink",
    "sklearn._loss.link.Interval",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.utils._bunch.Bunch",
    # numpy
    "numpy.dtype",
    "numpy.ndarray",
    "numpy.float64",
    "numpy.int64",
    "numpy.uint64",
    "numpy.random._generator.Generator",
)
MAX_MODEL_BYTES = 4 << 30  # uncompressed size of an estimator file


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


class ModelLoadError(UserError, RuntimeError):
    """A model directory that must not be used; the message says why and what to do."""


def save_model(folder: ModelFolder, model: TrainedModel) -> TrainedModel:
    """Write the estimator (skops), ``model.json`` and the model card; -> the model with the
    saved file's sha256 in its metadata."""
    import skops.io as sio

    folder.root.mkdir(parents=True, exist_ok=True)
    data = sio.dumps(model.estimator, compression=zipfile.ZIP_DEFLATED, compresslevel=3)
    unknown = sorted(set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES))
    if unknown:
        raise TypeError(
            f"model {model.name!r} holds types not on miscreen's trusted list {unknown}; "
            f"review them and add them to TRUSTED_TYPES in miscreen/train/persist.py"
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
        f"- Model file `{record['model_file']}` (skops format, loaded with a trusted-types "
        f"list), sha256 `{record['model_sha256']}`; scikit-learn "
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


def _read_meta(folder: ModelFolder) -> dict:
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
    try:
        meta = atomic_io.read_json(folder.meta)
    except (ValueError, OSError) as exc:
        raise ModelLoadError(f"{folder.meta} is not readable JSON ({exc}); retrain") from None
    if not isinstance(meta, dict):
        raise ModelLoadError(f"{folder.meta} is not a JSON object; retrain the model")
    return meta


def model_digest(folder: ModelFolder) -> str:
    """The sha256 ``model.json`` records for the estimator file (nothing is loaded)."""
    return str(_read_meta(folder).get("model_sha256"))


def load_model(folder: ModelFolder) -> TrainedModel:
    """The model of ``folder``, loaded without running code from it; ``ModelLoadError``
    saying why and what to do when it must not be used."""
    directory = folder.root
    meta = _read_meta(folder)
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
    trained = meta.get("packages", {}).get("scikit-learn")
    if trained != installed:
        raise ModelLoadError(
            f"{directory} was trained with scikit-learn {trained}, this environment has "
            f"{installed}; retrain the model (or install scikit-learn=={trained})."
        )
    schema = _schema(meta, folder)
    estimator = _load_estimator(path, directory)
    _check_schema_width(estimator, schema, directory)
    return TrainedModel(estimator, schema, meta)


def _schema(meta: dict, folder: ModelFolder) -> FeatureSchema:
    """The recorded feature schema, checked against what this miscreen computes."""
    try:
        saved = FeatureSchema.from_dict(meta["feature_schema"])
        current = feature_schema(saved.preset)
    except (KeyError, TypeError, ValueError) as exc:
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


def _load_estimator(path: Path, directory: Path) -> Any:
    """skops-load ``path`` with the trusted-types list, then check what was built."""
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    from miscreen.train.estimators import ConformalRegressor

    if not zipfile.is_zipfile(path):
        raise ModelLoadError(
            f"{path} is not a skops model file (perhaps a pickle from an older miscreen or "
            f"from elsewhere); it is never unpickled because that can run code. Retrain."
        )
    try:
        with zipfile.ZipFile(path) as zf:
            size = sum(info.file_size for info in zf.infolist())
        if size > MAX_MODEL_BYTES:
            raise ModelLoadError(f"{path} unpacks to {size:,} bytes (limit {MAX_MODEL_BYTES:,})")
        estimator = sio.load(path, trusted=list(TRUSTED_TYPES))
    except UntrustedTypesFoundException as exc:
        raise ModelLoadError(
            f"{path} holds types miscreen does not trust, so it was not loaded: {exc}. "
            f"Only use models you trained yourself or that come from a source you trust."
        ) from None
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(
            f"{path} is not a usable skops model file ({type(exc).__name__}: "
            f"{str(exc)[:300]}); retrain the model in {directory}"
        ) from None
    if not isinstance(estimator, ConformalRegressor):
        raise ModelLoadError(
            f"{path} holds a {type(estimator).__name__}, not a miscreen ConformalRegressor"
        )
    try:
        _check_fitted_parts(estimator)
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


def _parts(obj: Any, seen: set[int] | None = None) -> Iterator[Any]:
    """Every object reachable from ``obj`` through scikit-learn/miscreen objects' attributes
    and lists, tuples and dicts (each once)."""
    seen = set() if seen is None else seen
    stack = [obj]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, np.ndarray) and item.dtype == object:
            stack.extend(item.ravel().tolist())
        elif type(item).__module__.startswith(("sklearn.", "miscreen.")) and hasattr(
            item, "__dict__"
        ):
            stack.extend(vars(item).values())


def _check_fitted_parts(estimator: Any) -> None:
    """Refuse trees whose node indices point outside the tree or backwards, or at features
    the model's input does not have (scikit-learn follows them unchecked), and rebuild
    neighbour indexes from their training rows."""
    from sklearn.ensemble import (
        ExtraTreesRegressor,
        HistGradientBoostingRegressor,
        RandomForestRegressor,
    )
    from sklearn.neighbors import NearestNeighbors
    from sklearn.tree import BaseDecisionTree

    for part in list(_parts(estimator)):
        if isinstance(part, ExtraTreesRegressor | RandomForestRegressor):
            for member in getattr(part, "estimators_", []):
                if not isinstance(member, BaseDecisionTree):
                    raise TypeError(f"a forest holds a {type(member).__name__}")
                _check_tree(member.tree_, int(part.n_features_in_))
        elif isinstance(part, BaseDecisionTree) and hasattr(part, "tree_"):
            _check_tree(part.tree_, int(part.n_features_in_))
        elif isinstance(part, HistGradientBoostingRegressor):
            for predictors in getattr(part, "_predictors", []):
                for predictor in predictors:
                    _check_predictor(predictor, int(part.n_features_in_))
        elif isinstance(part, NearestNeighbors) and hasattr(part, "_fit_X"):
            part.fit(part._fit_X)


def _check_tree(tree: Any, width: int) -> None:
    n = int(tree.node_count)
    left, right, feature = tree.children_left, tree.children_right, tree.feature
    if not (len(left) == len(right) == len(feature) == n and n >= 1):
        raise ValueError(f"tree arrays disagree with its node count {n}")
    if int(tree.n_features) != width:
        raise ValueError(f"a tree expects {tree.n_features} features, its model {width}")
    inner = left != -1
    if not np.array_equal(inner, right != -1):
        raise ValueError("a tree node has exactly one child")
    _check_children(np.arange(n)[inner], left[inner], right[inner], n, "tree")
    if ((feature[inner] < 0) | (feature[inner] >= width)).any():
        raise ValueError("a tree node splits on a feature the model does not have")


def _check_predictor(predictor: Any, width: int) -> None:
    nodes = predictor.nodes
    n = len(nodes)
    if n < 1:
        raise ValueError("a boosting tree has no nodes")
    inner = ~nodes["is_leaf"].astype(bool)
    left, right = nodes["left"].astype(np.int64), nodes["right"].astype(np.int64)
    _check_children(np.arange(n)[inner], left[inner], right[inner], n, "boosting tree")
    if nodes["is_categorical"].astype(bool).any():
        raise ValueError("a boosting tree splits on categories, which miscreen never uses")
    feature = nodes["feature_idx"][inner].astype(np.int64)
    if ((feature < 0) | (feature >= width)).any():
        raise ValueError("a boosting tree node splits on a feature the model does not have")


def _check_children(idx: np.ndarray, left: np.ndarray, right: np.ndarray, n: int, what: str):
    """Children come after their parent and inside the tree (so every walk ends at a leaf)."""
    if ((left <= idx) | (left >= n) | (right <= idx) | (right >= n)).any():
        raise ValueError(f"a {what} node points outside the tree or backwards")


def _hyperparameters(cv: dict) -> str:
    tuning = cv.get("hyperparameters", {})
    if tuning.get("recorded"):
        return f"{tuning['recorded']}, as recorded in the config (model.hyperparameters)"
    if not tuning.get("searched"):
        return "defaults (no search)"
    return (
        f"{tuning['best_params']}, chosen by {tuning['scheme']} (MAE {tuning['best_cv_mae']:.3f})"
    )
