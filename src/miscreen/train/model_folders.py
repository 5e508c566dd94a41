"""A trained run's model folder on disk: saving it whole, reading its routing, loading it.

A save writes every model and ``routing.json`` into a fresh hidden folder beside the
target (``.<name>.new-*``), then swaps it in (the old folder moves to ``.<name>.old-*``
and is deleted): a killed save leaves the old models or none, never a mix. Leftovers of
killed saves are deleted by the next successful save; until then, when no models are in
place, the error names a leftover that is complete (every file verifies) to rename back.

One writer at a time: a save holds ``.<name>.lock`` beside the folder (``fcntl.flock``;
deleted when released), and so may a whole training run (:func:`hold_model_folder`); a
second writer is refused with :class:`~miscreen.errors.ModelFolderBusy` at once instead of
silently replacing the first's models.

``routing.json`` is read up to ``MAX_ROUTING_BYTES`` and checked against a schema: one
entry per row kind, nothing else, each naming one of the known models that rows of its
kind can use; a model folder that is a link, or lies outside the folder, never loads.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from miscreen import atomic_io
from miscreen.catalog import ModelCatalog, ModelFolder
from miscreen.errors import ModelFolderBusy, ModelLoadError
from miscreen.train.persist import load_model, model_digest, read_capped_json, save_model
from miscreen.train.persist import verify_files as verify_model_files
from miscreen.train.row_kinds import MODEL_NAMES, ROW_KINDS, USABLE, TrainResult

log = logging.getLogger(__name__)

MAX_ROUTING_BYTES = 1 << 20
_HELD: dict[Path, tuple[int, int]] = {}  # lock file -> (descriptor, holds) of this process


class RoutingEntry(BaseModel):
    """How rows of one kind are served: the model's name (one of the known models, never a
    path), the out-of-fold errors it was chosen by, and the training rows of that kind.
    Further keys are kept as information."""

    model_config = ConfigDict(extra="allow", strict=True)

    model: Literal[MODEL_NAMES]  # type: ignore[valid-type]
    cv_mae: dict[str, float | None] = {}
    rows: int = Field(default=0, ge=0)


class RoutingFile(BaseModel):
    """``routing.json``: an entry per row kind and nothing else."""

    model_config = ConfigDict(extra="forbid", strict=True)

    structure_rows: RoutingEntry
    cell_rows: RoutingEntry
    composition_rows: RoutingEntry


def _lock_path(catalog: ModelCatalog) -> Path:
    root = Path(catalog.root)
    return root.with_name(f".{root.name}.lock")


@contextmanager
def hold_model_folder(catalog: ModelCatalog) -> Iterator[None]:
    """Hold the model folder's writer lock (re-entrant within this process);
    ``ModelFolderBusy`` at once when another process holds it. The lock file is deleted
    when the last hold ends."""
    path = _lock_path(catalog).absolute()
    if path in _HELD:
        fd, holds = _HELD[path]
        _HELD[path] = (fd, holds + 1)
    else:
        _HELD[path] = (_acquire(path, catalog), 1)
    try:
        yield
    finally:
        fd, holds = _HELD[path]
        if holds > 1:
            _HELD[path] = (fd, holds - 1)
        else:
            del _HELD[path]
            path.unlink(missing_ok=True)  # before releasing: a waiting opener sees it gone
            os.close(fd)


def _acquire(path: Path, catalog: ModelCatalog) -> int:
    """An open descriptor of ``path`` holding its exclusive lock; the file is the one at
    ``path`` (not one a finishing writer has just deleted)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ModelFolderBusy(
                f"another miscreen process is writing models to {catalog.root} (it holds "
                f"{path.name}); wait for it to finish, or write to another folder"
            ) from None
        try:
            current = os.stat(path).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:
            return fd
        os.close(fd)  # locked a file its writer deleted meanwhile: try the new one


def save_models(result: TrainResult, catalog: ModelCatalog) -> TrainResult:
    """Write every model and ``routing.json`` into a fresh folder beside ``catalog.root``,
    then swap it in: a killed save leaves the old models (or none), never a mix. Deletes
    what killed saves left behind. -> the result with each saved file's sha256 in its
    models' metadata."""
    root = Path(catalog.root)
    with hold_model_folder(catalog):
        staging = ModelCatalog(root.with_name(f".{root.name}.new-{uuid.uuid4().hex[:8]}"))
        try:
            saved = {n: save_model(staging.model(n), m) for n, m in result.models.items()}
            atomic_io.write_json(staging.routing, result.routing)
        except BaseException:
            shutil.rmtree(staging.root, ignore_errors=True)
            raise
        old = root.with_name(f".{root.name}.old-{uuid.uuid4().hex[:8]}")
        if root.exists():
            os.replace(root, old)
        os.replace(staging.root, root)
        shutil.rmtree(old, ignore_errors=True)
        for stale in leftovers(catalog):
            log.info("deleting %s, left by an interrupted save", stale)
            shutil.rmtree(stale, ignore_errors=True)
    return TrainResult(saved, result.routing, result.failures)


def leftovers(catalog: ModelCatalog) -> list[Path]:
    """Folders that interrupted saves left beside ``catalog.root`` (new and old)."""
    root = Path(catalog.root)
    found = [*root.parent.glob(f".{root.name}.new-*"), *root.parent.glob(f".{root.name}.old-*")]
    return sorted(p for p in found if p.is_dir() and not p.is_symlink())


def complete_leftover(catalog: ModelCatalog) -> Path | None:
    """The newest leftover folder whose routing and every model file verify, or None."""
    complete = []
    for folder in leftovers(catalog):
        try:
            routing = read_routing(ModelCatalog(folder))
            for name in {entry["model"] for entry in routing.values()}:
                verify_model_files(ModelCatalog(folder).model(name))
        except ModelLoadError:
            continue
        complete.append(folder)
    return max(complete, key=lambda p: p.stat().st_mtime_ns, default=None)


def read_routing(catalog: ModelCatalog) -> dict[str, dict]:
    """``routing.json`` of a model folder, checked against its schema; a clear error when
    it is not one."""
    if not catalog.routing.is_file():
        leftover = complete_leftover(catalog) if Path(catalog.root).name else None
        hint = (
            f"; a save was interrupted after moving the previous models to {leftover}: "
            f"rename it back to {catalog.root} to use them"
            if leftover is not None
            else ""
        )
        raise ModelLoadError(
            f"{catalog.root} holds no trained models (no {catalog.routing.name}){hint}; train "
            f"them with `miscreen train CONFIG` or `miscreen train --data FILE --out "
            f"{catalog.root}`"
        )
    routing = read_capped_json(catalog.routing, MAX_ROUTING_BYTES)
    if not isinstance(routing, dict) or not all(
        isinstance(routing.get(kind), dict) for kind in ROW_KINDS
    ):
        raise ModelLoadError(
            f"{catalog.routing} was written by an older miscreen (expected an entry per row "
            f"kind: {', '.join(ROW_KINDS)}); retrain the models in {catalog.root}"
        )
    try:
        RoutingFile.model_validate(routing)
    except ValidationError as exc:
        problems = "; ".join(_problem(err) for err in exc.errors()[:5])
        raise ModelLoadError(
            f"{catalog.routing} is not a miscreen routing file: {problems}; retrain the "
            f"models in {catalog.root}"
        ) from None
    for kind in ROW_KINDS:
        name = routing[kind]["model"]
        if name not in USABLE[kind]:
            raise ModelLoadError(
                f"{catalog.routing}: {kind} cannot be served by the {name} model (it needs "
                f"features such rows lack); retrain the models in {catalog.root}"
            )
    return routing


def _problem(err: dict) -> str:
    where = ".".join(str(p) for p in err["loc"])[:80]
    shown = repr(err.get("input"))
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"{where}: {err['msg']} (got {shown})"


def model_folder(catalog: ModelCatalog, name: str) -> ModelFolder:
    """The folder of model ``name``: a real folder directly inside ``catalog.root``."""
    folder = catalog.model(name)
    inside = folder.root.resolve().parent == Path(catalog.root).resolve()
    if folder.root.is_symlink() or not inside:
        raise ModelLoadError(
            f"{folder.root} is a link or lies outside {catalog.root}; a model folder holds "
            f"its models itself. Retrain the models"
        )
    return folder


def load_models(catalog: ModelCatalog) -> TrainResult:
    """The models a trained run uses (sha256-verified) and their routing."""
    routing = read_routing(catalog)
    names = sorted({r["model"] for r in routing.values()})
    return TrainResult({n: load_model(model_folder(catalog, n)) for n in names}, routing)


def model_digests(catalog: ModelCatalog) -> dict[str, str]:
    """Row kind -> sha256 of the model serving it, read from ``model.json`` (no unpickling)."""
    routing = read_routing(catalog)
    return {kind: model_digest(model_folder(catalog, routing[kind]["model"])) for kind in ROW_KINDS}
