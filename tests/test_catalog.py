"""The run catalog names every artifact once; its writers keep failures, manifest and
report sections."""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd
import pytest

from miscreen import atomic_io
from miscreen import schema as S
from miscreen.catalog import ModelCatalog, RunCatalog

SRC = Path(__file__).resolve().parents[1] / "src" / "miscreen"


def artifact_names() -> set[str]:
    run, models = RunCatalog(Path("run")), ModelCatalog(Path("models"))
    names = {
        getattr(run, attr).name
        for attr, value in vars(RunCatalog).items()
        if isinstance(value, property)
    }
    folder = models.model("m")
    names |= {models.routing.name, folder.estimator.name, folder.meta.name, folder.card.name}
    return {n for n in names if "." in n}  # file names; folder names double as dict keys


def test_no_artifact_file_name_is_spelled_outside_the_catalog():
    names = artifact_names()
    assert {"candidates.csv", "manifest.json", "routing.json", "model.skops"} <= names
    spelled = []
    # the structure store (store/structures.py) owns its own folder layout, not a run's
    owners = {SRC / "catalog.py", SRC / "store" / "structures.py"}
    for path in SRC.rglob("*.py"):
        if path in owners:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in names:
                spelled.append(f"{path.relative_to(SRC)}:{node.lineno} {node.value!r}")
    assert not spelled, "artifact names spelled outside catalog.py: " + ", ".join(spelled)


def test_failures_of_every_stage_are_kept_and_unioned(tmp_path):
    run = RunCatalog(tmp_path)
    run.write_failures("train", pd.DataFrame([S.failure("a", "obelix", "load", "bad row")]))
    run.write_failures("screen", pd.DataFrame([S.failure("b", "csv", "featurize", "timeout")]))
    run.write_failures("train", pd.DataFrame([S.failure("c", "obelix", "load", "again")]))
    union = atomic_io.read_table(run.failures)
    assert sorted(union[S.ID]) == ["b", "c"]  # a stage's rerun replaces its own rows only
    assert list(union.columns) == list(S.FAILURE_COLUMNS)


def test_sections_are_kept_in_order_and_replaced_by_name(tmp_path):
    run = RunCatalog(tmp_path)
    run.write_section("verify", "<h2>late</h2>", order=70)
    run.write_section("case", "<h2>old</h2>", order=60)
    run.write_section("case", "<h2>new</h2>", order=60)
    assert run.read_sections() == ["<h2>new</h2>", "<h2>late</h2>"]
    with pytest.raises(ValueError, match="lower-case"):
        run.write_section("../x", "")
    with pytest.raises(ValueError, match="plain file names"):
        run.file("../case.json")


def test_manifest_keeps_every_stage(tmp_path):
    run = RunCatalog(tmp_path)
    run.update_manifest({"run_name": "x"}, 0, "train", {"rows": 3})
    run.update_manifest({"run_name": "x"}, 0, "screen", {"rows": 5})
    manifest = atomic_io.read_json(run.manifest)
    assert manifest["stages"]["train"]["rows"] == 3 and manifest["stages"]["screen"]["rows"] == 5
    assert manifest["seed"] == 0 and "finished_at" in manifest["stages"]["screen"]
