"""A model folder is read as data (issue 27): ``routing.json`` follows its schema and never
points outside the folder, oversized files are refused, killed saves leave nothing behind
after the next save and the recovery hint names only a complete folder, and two writers
never silently replace each other's models."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from miscreen.catalog import ModelCatalog
from miscreen.errors import ModelFolderBusy, UserError
from miscreen.train.persist import ModelLoadError
from miscreen.train.routing import (
    CELL_ROWS,
    COMPOSITION_ROWS,
    STRUCTURE_ROWS,
    TrainResult,
    choose_routing,
    load_models,
    model_digests,
    save_models,
)
from tests.fuzz.helpers import small_model_folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_model_folder(tmp_path_factory.mktemp("models"))


@pytest.fixture
def folder(trained: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(trained, tmp_path / "models" / "run"))


def _edit_routing(folder: Path, change) -> None:
    path = folder / "routing.json"
    routing = json.loads(path.read_text())
    change(routing)
    path.write_text(json.dumps(routing))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # an extra entry naming a folder outside --model (it used to load)
        (lambda r: r.update(extra={"model": "../../M/composition"}), "extra"),
        (lambda r: r.update(extra="abc"), "extra"),  # TypeError: string indices
        (lambda r: r.update(extra={}), "extra"),  # KeyError: 'model'
        (lambda r: r[CELL_ROWS].update(model="../cell"), "cell_rows.model"),
        (lambda r: r[CELL_ROWS].update(model=["cell"]), "cell_rows.model"),
        (lambda r: r[CELL_ROWS].update(rows="many"), "cell_rows.rows"),
        (lambda r: r[CELL_ROWS].update(cv_mae=[1]), "cell_rows.cv_mae"),
        (lambda r: r[COMPOSITION_ROWS].update(model="cell"), "cannot be served by the cell"),
    ],
)
def test_malformed_routing_is_a_clear_model_load_error(
    folder: Path, tmp_path: Path, change, message: str
) -> None:
    outside = tmp_path / "M" / "composition"
    shutil.copytree(folder / "composition", outside)
    _edit_routing(folder, change)
    for read in (load_models, model_digests):
        with pytest.raises(ModelLoadError, match="routing") as err:
            read(ModelCatalog(folder))
        assert message in str(err.value)


def test_a_model_folder_that_links_outside_never_loads(folder: Path, tmp_path: Path) -> None:
    outside = Path(shutil.copytree(folder / "composition", tmp_path / "elsewhere"))
    shutil.rmtree(folder / "composition")
    (folder / "composition").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ModelLoadError, match="is a link or lies outside"):
        load_models(ModelCatalog(folder))


def test_a_huge_routing_json_is_refused(folder: Path) -> None:
    _edit_routing(folder, lambda r: r[CELL_ROWS].update(note="x" * (2 << 20)))
    with pytest.raises(ModelLoadError, match=r"has [\d,]+ bytes.*limit"):
        load_models(ModelCatalog(folder))


def test_cv_rows_count_only_rows_that_were_featurized() -> None:
    ids = [f"s{i}" for i in range(40)]
    kinds = pd.Series(CELL_ROWS, index=ids)
    used = ids[:15]  # 25 rows failed featurization: they have no out-of-fold error
    oof = {"cell": pd.Series(0.5, index=used), "composition": pd.Series(1.0, index=used)}
    routing = choose_routing(oof, kinds)
    assert routing[CELL_ROWS] == {
        "model": "cell",
        "cv_mae": {"cell": 0.5, "composition": 1.0},
        "rows": 15,
    }
    assert routing[STRUCTURE_ROWS]["rows"] == 0
    assert TrainResult({}, routing).routed_cv == (0.5, 15)  # metrics.json's cv_mae, cv_n


def _leftover(folder: Path, suffix: str) -> Path:
    return Path(shutil.copytree(folder, folder.with_name(f".{folder.name}.{suffix}")))


def test_the_next_save_deletes_what_killed_saves_left(folder: Path) -> None:
    new = _leftover(folder, "new-1234abcd")
    old = _leftover(folder, "old-1234abcd")
    unrelated = _leftover(folder, "backup")
    save_models(load_models(ModelCatalog(folder)), ModelCatalog(folder))
    assert not new.exists() and not old.exists()
    assert unrelated.exists() and (folder / "routing.json").is_file()


def test_the_recovery_hint_names_only_a_complete_folder(folder: Path) -> None:
    partial = _leftover(folder, "old-00000000")  # sorts first
    (partial / "cell" / "model.skops").write_bytes(b"half a file")
    complete = _leftover(folder, "old-ffffffff")
    os.utime(partial)  # and is the newest
    shutil.rmtree(folder)
    with pytest.raises(ModelLoadError, match="holds no trained models") as err:
        load_models(ModelCatalog(folder))
    assert f"to {complete}: rename it back" in str(err.value)
    assert str(partial) not in str(err.value)
    shutil.rmtree(complete)
    with pytest.raises(ModelLoadError) as err:
        load_models(ModelCatalog(folder))
    assert "rename it back" not in str(err.value)


def test_a_second_writer_is_refused_while_the_first_holds_the_folder(folder: Path) -> None:
    result = load_models(ModelCatalog(folder))
    lock = folder.with_name(f".{folder.name}.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another process writing these models
        before = (folder / "routing.json").stat().st_mtime_ns
        with pytest.raises(ModelFolderBusy, match="another miscreen process is writing"):
            save_models(result, ModelCatalog(folder))
        assert (folder / "routing.json").stat().st_mtime_ns == before
        assert issubclass(ModelFolderBusy, UserError)
    finally:
        os.close(fd)
    save_models(result, ModelCatalog(folder))  # free again
