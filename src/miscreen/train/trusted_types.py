"""Loading an estimator file with exactly the types miscreen trusts.

``skops.io.load(path, trusted=...)`` trusts the given types *and* skops' own defaults
(every scikit-learn estimator, numpy ufuncs and more). So miscreen checks the file first:
it lists every type the file names (each ``__module__``/``__class__`` pair of its
``schema.json``, plus what ``skops.io.get_untrusted_types`` reports), refuses the file
when any of them is not on :data:`TRUSTED_TYPES` (or :data:`BUILTIN_TYPES`), and only then
loads it, trusting exactly the types it found. Nothing is imported or built before the
check. Saving runs the same check, so a new estimator class is noticed when first saved.

skops is imported through :func:`skops_io`: at import, skops lists scikit-learn's
estimators with ``sklearn.utils.all_estimators``, which imports every scikit-learn
subpackage, among them ``sklearn.externals.array_api_compat.torch`` and so PyTorch (seven
seconds, a second OpenMP runtime and PyTorch's native thread pools in every process that
loads a model). miscreen never uses PyTorch there; :func:`skops_io` keeps it out.
"""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

from miscreen.errors import ModelLoadError

# Every non-builtin type a miscreen model holds (all model kinds of ``train.estimators``),
# reviewed: scikit-learn estimators and their fitted parts, miscreen's own estimators,
# numpy containers. A type not listed here is refused at load.
TRUSTED_TYPES: tuple[str, ...] = (
    # miscreen (src/miscreen/train/estimators.py)
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
# the plain values skops stores as JSON or builds as containers (no code behind them)
BUILTIN_TYPES: tuple[str, ...] = tuple(
    f"builtins.{name}"
    for name in ("dict", "list", "tuple", "str", "int", "float", "bool", "NoneType")
)
MAX_MODEL_BYTES = 4 << 30  # uncompressed size of an estimator file
MAX_SCHEMA_BYTES = 256 << 20  # its schema.json (about 40 kB per tree)
SCHEMA_FILE = "schema.json"  # where skops keeps the object tree inside its zip


def skops_io() -> ModuleType:
    """``skops.io``, imported without letting scikit-learn's estimator discovery import
    PyTorch (when PyTorch is not imported already): ``import torch`` fails while skops
    loads, and ``pkgutil.walk_packages`` skips the scikit-learn subpackage that needs it."""
    if "skops.io" not in sys.modules and "torch" not in sys.modules:
        blocker = _NoTorch()
        sys.meta_path.insert(0, blocker)
        try:
            import skops.io
        finally:
            sys.meta_path.remove(blocker)
    import skops.io

    return skops.io


class _NoTorch:
    """An import finder that refuses ``torch`` (and only it)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"{name} is not imported while skops loads")
        return None


def untrusted_types(data: bytes | None = None, path: Path | None = None) -> list[str]:
    """The types a skops file (its bytes, or its path) names that are not on miscreen's
    lists, sorted; ``[]`` when it may be loaded."""
    return sorted(file_types(data, path) - set(TRUSTED_TYPES) - set(BUILTIN_TYPES))


def file_types(data: bytes | None = None, path: Path | None = None) -> set[str]:
    """Every type a skops file names: each ``__module__``/``__class__`` pair in its
    ``schema.json`` and whatever skops itself counts as untrusted (nothing is imported)."""
    import io

    sio = skops_io()
    source: Any = io.BytesIO(data) if data is not None else path
    with zipfile.ZipFile(source) as zf:
        info = zf.getinfo(SCHEMA_FILE)
        if info.file_size > MAX_SCHEMA_BYTES:
            raise ValueError(
                f"its {SCHEMA_FILE} has {info.file_size:,} bytes (limit {MAX_SCHEMA_BYTES:,})"
            )
        schema = json.loads(zf.read(info))
    found = set(_named_types(schema))
    found |= set(sio.get_untrusted_types(data=data) if data is not None else [])
    if data is None:
        found |= set(sio.get_untrusted_types(file=path))
    return found


# skops nodes that hand back a function or method (trusted by skops' own defaults when it is
# a numpy or scipy one); miscreen's models hold none, so a file with one is refused.
CALLABLE_LOADERS = frozenset({"FunctionNode", "MethodNode", "PartialNode"})


def _named_types(schema: Any) -> list[str]:
    """``module.class`` of every object of a skops schema tree (walked without recursion),
    and ``callable <loader>: <content>`` for every node that would hand back a callable."""
    names, stack = [], [schema]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            module, cls = item.get("__module__"), item.get("__class__")
            if module is not None or cls is not None:
                names.append(f"{module}.{cls}")
            if item.get("__loader__") in CALLABLE_LOADERS:
                names.append(f"callable {item['__loader__']}: {str(item.get('content'))[:80]}")
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return names


def load_trusted(path: Path) -> Any:
    """The object in the skops file ``path``, loaded only when every type it names is on
    miscreen's lists, trusting exactly those; ``ModelLoadError`` saying why otherwise."""
    sio = skops_io()
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
        found = file_types(path=path)
        unknown = sorted(found - set(TRUSTED_TYPES) - set(BUILTIN_TYPES))
        if unknown:
            raise ModelLoadError(
                f"{path} holds types miscreen does not trust, so it was not loaded: "
                f"{', '.join(unknown)}. Only use models you trained yourself or that come "
                f"from a source you trust."
            )
        return sio.load(path, trusted=sorted(found))
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(
            f"{path} is not a usable skops model file ({type(exc).__name__}: "
            f"{str(exc)[:300]}); retrain the model"
        ) from None
