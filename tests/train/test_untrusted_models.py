"""Model folders from elsewhere are data, not code (issue 16): a crafted estimator file never
runs code when loaded, even with its sha256 recorded beside it; damaged or mismatched
folders are clear errors; an interrupted retrain leaves the old models or none, never a mix."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from miscreen import atomic_io
from miscreen.catalog import ModelCatalog
from miscreen.train.persist import ModelLoadError, TrainedModel, load_model
from miscreen.train.routing import TrainResult, load_models, save_models
from tests.fuzz.helpers import small_model_folder

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_model_folder(tmp_path_factory.mktemp("models"))


@pytest.fixture
def folder(trained: Path, tmp_path: Path) -> Path:
    """A private copy of the small model folder."""
    return Path(shutil.copytree(trained, tmp_path / "m"))


def _any_model(catalog: ModelCatalog):
    name = next(iter(json.loads(catalog.routing.read_text()).values()))["model"]
    return catalog.model(name)


def _record_hash(model_folder) -> None:
    """Write the estimator file's sha256 into model.json, as an attacker would."""
    meta = json.loads(model_folder.meta.read_text())
    meta["model_sha256"] = atomic_io.sha256_file(model_folder.estimator)
    model_folder.meta.write_text(json.dumps(meta))


class _Payload:
    """Unpickling this creates ``marker``: arbitrary code run by a model file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_pickle_with_its_hash_recorded_never_runs(folder: Path, tmp_path: Path) -> None:
    live = tmp_path / "live"
    pickle.loads(pickle.dumps(_Payload(live)))
    assert live.exists()  # the payload is real: unpickling it runs code
    marker = tmp_path / "pwned"
    model = _any_model(ModelCatalog(folder))
    model.estimator.write_bytes(pickle.dumps(_Payload(marker)))
    _record_hash(model)
    with pytest.raises(ModelLoadError, match=r"not a skops model file.*never unpickled"):
        load_models(ModelCatalog(folder))
    assert not marker.exists()


def test_a_model_file_naming_an_untrusted_type_is_refused_before_import(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "evil_payload_mod.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).touch()\n"
        "class Evil:\n    def __setstate__(self, state):\n"
        f"        Path({str(marker)!r}).write_text('built')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    model = _any_model(ModelCatalog(folder))
    with zipfile.ZipFile(model.estimator) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    schema = json.loads(files["schema.json"])
    assert schema["__class__"] == "ConformalRegressor"
    schema["__module__"], schema["__class__"] = "evil_payload_mod", "Evil"
    files["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(model.estimator, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    _record_hash(model)
    with pytest.raises(ModelLoadError, match=r"types miscreen does not trust.*evil_payload_mod"):
        load_model(model)
    assert not marker.exists() and "evil_payload_mod" not in sys.modules


def test_a_crafted_tree_is_refused(folder: Path) -> None:
    import skops.io as sio

    model = _any_model(ModelCatalog(folder))
    estimator = load_model(model).estimator
    tree = estimator.estimator_[-1].estimators_[0].tree_
    state = tree.__getstate__()
    state["nodes"]["left_child"][0] = 10**6  # sklearn would index out of bounds
    tree.__setstate__(state)
    sio.dump(estimator, model.estimator)
    _record_hash(model)
    with pytest.raises(ModelLoadError, match="points outside the tree or backwards"):
        load_model(model)


def test_clear_errors_for_folders_that_are_not_usable(folder: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not a miscreen model directory"):
        load_model(ModelCatalog(tmp_path).model("nothing"))
    with pytest.raises(ModelLoadError, match="holds no trained models"):
        load_models(ModelCatalog(tmp_path))
    model = _any_model(ModelCatalog(folder))
    meta = json.loads(model.meta.read_text())
    meta["feature_schema"]["version"] = "comp0-cell0"
    model.meta.write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="featurizer versions comp0-cell0 vs") as err:
        load_model(model)
    assert "different order" not in str(err.value)
    meta["feature_schema"]["names"] = meta["feature_schema"]["names"][::-1]
    meta["feature_schema"]["version"] = load_model_version(folder, model.name)
    model.meta.write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="different order"):
        load_model(model)


def load_model_version(folder: Path, name: str) -> str:
    from miscreen.featurize import feature_schema

    preset = json.loads((folder / name / "model.json").read_text())["feature_schema"]["preset"]
    return feature_schema(preset).version


# -- an interrupted retrain ---------------------------------------------------------------
def _generation(result: TrainResult, label: str) -> TrainResult:
    models = {
        n: TrainedModel(m.estimator, m.schema, {**m.meta, "generation": label})
        for n, m in result.models.items()
    }
    routing = {k: {**v, "generation": label} for k, v in result.routing.items()}
    return TrainResult(models, routing)


def _state(catalog: ModelCatalog) -> str:
    """``old``, ``new`` or ``none``; fails the test on a mix."""
    try:
        loaded = load_models(catalog)
    except ModelLoadError:
        return "none"
    labels = {m.meta.get("generation") for m in loaded.models.values()}
    labels |= {r.get("generation") for r in loaded.routing.values()}
    names = {p.name for p in catalog.root.iterdir() if p.is_dir()}
    labels |= {
        json.loads((catalog.root / n / "model.json").read_text())["generation"] for n in names
    }
    assert len(labels) == 1, f"a mixed model folder: {labels}"
    return labels.pop()


@pytest.fixture
def generations(trained: Path, tmp_path: Path) -> tuple[TrainResult, TrainResult, ModelCatalog]:
    base = load_models(ModelCatalog(trained))
    target = ModelCatalog(tmp_path / "models" / "run")
    save_models(_generation(base, "old"), target)
    return _generation(base, "old"), _generation(base, "new"), target


def _count_replaces(result: TrainResult, root: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """The writes (renames) of one save over an existing model folder."""
    save_models(result, ModelCatalog(root))
    calls = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda *a, **k: (calls.append(a), real(*a, **k))[1])
    save_models(result, ModelCatalog(root))
    monkeypatch.setattr(os, "replace", real)
    return len(calls)


def test_a_retrain_interrupted_at_any_write_leaves_old_or_no_models(
    generations: tuple[TrainResult, TrainResult, ModelCatalog],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old, new, target = generations
    steps = _count_replaces(new, tmp_path / "count" / "run", monkeypatch)
    assert steps >= 2 * len(new.models) + 3  # every file, the routing and the swap
    real = os.replace
    seen = set()
    for stop in range(1, steps + 1):
        if _state(target) != "old":
            save_models(old, target)
        calls = []

        def failing(*args, stop=stop, calls=calls, **kwargs):
            calls.append(args)
            if len(calls) == stop:
                raise OSError(f"disk full at write {stop}")
            return real(*args, **kwargs)

        monkeypatch.setattr(os, "replace", failing)
        with pytest.raises(OSError, match="disk full"):
            save_models(new, target)
        monkeypatch.setattr(os, "replace", real)
        seen.add(_state(target))
    assert seen <= {"old", "none"}
    save_models(new, target)
    assert _state(target) == "new"


KILL_SCRIPT = """
import os, signal, sys
from pathlib import Path
from miscreen.catalog import ModelCatalog
from miscreen.train.routing import load_models, save_models
stop = int(sys.argv[3])
new = load_models(ModelCatalog(Path(sys.argv[1])))
calls = []
real = os.replace
def killing(*args, **kwargs):
    calls.append(args)
    if len(calls) == stop:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)
os.replace = killing
save_models(new, ModelCatalog(Path(sys.argv[2])))
"""


@pytest.mark.parametrize("stop", [4, -1])
def test_a_retrain_killed_mid_save_leaves_old_or_no_models(
    generations: tuple[TrainResult, TrainResult, ModelCatalog],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stop: int,
) -> None:
    """Killed (SIGKILL) while writing the second model's files, and between moving the old
    folder aside and moving the new one in (the last write)."""
    _, new, target = generations
    source = ModelCatalog(tmp_path / "new")
    save_models(new, source)
    steps = _count_replaces(new, tmp_path / "count" / "run", monkeypatch)
    stop = steps if stop == -1 else stop
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILL_SCRIPT), str(source.root), str(target.root),
         str(stop)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert _state(target) == ("none" if stop == steps else "old")


def test_only_the_listed_types_load_not_skops_defaults(folder: Path) -> None:
    """skops trusts every scikit-learn estimator by default; miscreen trusts its list only."""
    import numpy as np
    import skops.io as sio
    from sklearn.linear_model import LinearRegression

    from miscreen.train.persist import TRUSTED_TYPES

    model = _any_model(ModelCatalog(folder))
    estimator = load_model(model).estimator
    estimator.extra_ = LinearRegression().fit(np.eye(3), np.arange(3.0))
    sio.dump(estimator, model.estimator)
    _record_hash(model)
    assert "sklearn.linear_model._base.LinearRegression" not in TRUSTED_TYPES
    # skops, given our list, would load it: it trusts LinearRegression by default
    assert set(sio.get_untrusted_types(file=model.estimator)) <= set(TRUSTED_TYPES)
    with pytest.raises(ModelLoadError, match=r"does not trust.*LinearRegression"):
        load_model(model)


def test_a_function_skops_trusts_by_default_is_refused(folder: Path) -> None:
    """skops adds its defaults (numpy ufuncs among them) to any trusted list; a model file
    holding a function node never reaches skops' loader."""
    import numpy as np
    import skops.io as sio

    model = _any_model(ModelCatalog(folder))
    estimator = load_model(model).estimator
    estimator.extra_ = np.add  # a ufunc: trusted by skops by default
    sio.dump(estimator, model.estimator)
    # a crafted file labels the function node with a type on miscreen's list
    with zipfile.ZipFile(model.estimator) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    schema = json.loads(files["schema.json"])
    nodes, stack = [], [schema]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            nodes += [item] if item.get("__loader__") == "FunctionNode" else []
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    assert nodes
    for node in nodes:
        node.update({"__module__": "numpy", "__class__": "ndarray"})
    files["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(model.estimator, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    _record_hash(model)
    with pytest.raises(ModelLoadError, match=r"does not trust.*callable FunctionNode"):
        load_model(model)


def test_saving_a_model_with_an_unlisted_type_is_refused(trained: Path, tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    from miscreen.train.persist import save_model

    model = load_model(_any_model(ModelCatalog(trained)))
    model.estimator.extra_ = LinearRegression()
    with pytest.raises(TypeError, match="LinearRegression"):
        save_model(ModelCatalog(tmp_path).model("x"), model)


def test_a_huge_model_json_is_refused_by_size(folder: Path) -> None:
    from miscreen.train.persist import MAX_META_BYTES

    model = _any_model(ModelCatalog(folder))
    meta = json.loads(model.meta.read_text())
    meta["padding"] = "x" * (MAX_META_BYTES + 1)
    model.meta.write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match=r"has [\d,]+ bytes.*limit"):
        load_model(model)
