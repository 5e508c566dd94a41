"""One small configured run (composition preset, 40 trees, 3 folds) shared by the report
and notebook tests: built once per test session under pytest's base temp folder."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from miscreen.cli import app
from tests.small_config import small_config

CANDIDATES = """
  - kind: pymatgen
  - kind: obelix
    split: test
    families: [argyrodites, garnet, LGPS]
  - kind: csv
    path: {root}/cands.csv
"""
SCREEN = "{top_k: 5, max_e_above_hull: 0.1}"


def small_run(root: Path) -> Path:
    """The run folder of the small run under ``root`` (running it the first time)."""
    run_dir = root / "results" / "small"
    if (run_dir / "report.html").exists():
        return run_dir
    root.mkdir(parents=True, exist_ok=True)
    (root / "cands.csv").write_text("id,composition\nok1,Li6PS5Cl\nno-li,NaCl\n")
    cfg = root / "small.yaml"
    cfg.write_text(small_config(root, "small", CANDIDATES.format(root=root), SCREEN))
    result = CliRunner().invoke(app, ["run", str(cfg)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return run_dir
