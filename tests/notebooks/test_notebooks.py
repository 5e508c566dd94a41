"""Every notebook executes against a small run's outputs and redraws its plots."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from miscreen.catalog import RunCatalog

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def artifact_names() -> set[str]:
    """Every file name the run catalog gives a run folder's artifacts."""
    run = RunCatalog(Path("run"))
    names = {
        getattr(run, a).name
        for a in dir(RunCatalog)
        if isinstance(getattr(RunCatalog, a), property)
    }
    return names - {"run"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_valid_clean_python_reading_through_the_catalog(path):
    """Cheap checks of what a notebook does: a valid notebook saved without outputs, code
    cells that compile, and run-folder files found through ``RunCatalog`` (a renamed
    artifact cannot leave a notebook reading a file that is no longer written)."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and not any(c.outputs or c.execution_count for c in code)
    for i, cell in enumerate(code):
        compile(cell.source, f"{path.name} code cell {i}", "exec")
    source = "\n".join(c.source for c in code)
    assert "RunCatalog(" in source
    spelled = sorted(n for n in artifact_names() if f"'{n}'" in source or f'"{n}"' in source)
    assert not spelled, f"{path.name} spells run artifacts instead of asking RunCatalog: {spelled}"


def test_the_catalog_check_sees_spelled_names():
    assert {"candidates.parquet", "test_predictions.csv", "case.json"} <= artifact_names()


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes_on_a_small_run(path, small_run, monkeypatch):
    monkeypatch.setenv("MISCREEN_RUN_DIR", str(small_run))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={
        "metadata": {"path": str(path.parent)}}).execute()  # fmt: skip
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # parity, residuals, Pareto
    text = "".join(o.get("text", "") for o in outputs)
    assert f"{small_run} " in text and "Pareto-optimal candidates" in text
    assert "not a case run" in text
