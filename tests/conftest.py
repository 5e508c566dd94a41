"""Shared fixtures: the real data mirror at ../shared/data (CI sets MISCREEN_MIRROR), the
configuration of a quick test run, and one small configured run shared by the tests that
only read a run folder (report, notebooks)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MISCREEN_MIRROR", REPO.parent / "shared" / "data")).resolve()
FIXTURES = REPO / "tests" / "fixtures"


@pytest.fixture(autouse=True, scope="session")
def _mirror(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every test reads the shared mirror and caches into a private folder."""
    if not (SHARED / "obelix" / "all.csv").is_file():
        raise RuntimeError(f"the shared data mirror is missing at {SHARED}; see README")
    os.environ["MISCREEN_MIRROR"] = str(SHARED)
    os.environ["MISCREEN_DATA_DIR"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def obelix_all(_mirror):
    """The whole OBELiX table with parsed CIFs (loaded once per session)."""
    from miscreen.fetch.obelix import load_obelix

    return load_obelix("all")


def small_config(root: Path, name: str, candidates: str, screen: str, data: str = "") -> str:
    """YAML of a quick run (composition preset, 40 trees, 3 folds) named ``name`` writing
    under ``root``; ``candidates`` is the indented list under ``candidates:``, ``screen`` and
    ``data`` are flow mappings (data optional)."""
    lines = [
        f"run_name: {name}",
        "seed: 0",
        f"results_dir: {root}/results",
        f"models_dir: {root}/models",
        *([f"data: {data}"] if data else []),
        "features: {preset: composition}",
        "model: {kind: extra_trees, n_estimators: 40, cv_folds: 3}",
        "candidates:",
        candidates.strip("\n"),
        f"screen: {screen}",
    ]
    return "\n".join(lines) + "\n"


SMALL_RUN_CANDIDATES = """
  - kind: pymatgen
  - kind: obelix
    split: test
    families: [argyrodites, garnet, LGPS]
  - kind: csv
    path: {root}/cands.csv
"""


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory, _mirror) -> Path:
    """The run folder of one small ``miscreen run`` (built once per session)."""
    from typer.testing import CliRunner

    from miscreen.cli import app

    root = tmp_path_factory.mktemp("small-run")
    (root / "cands.csv").write_text("id,composition\nok1,Li6PS5Cl\nno-li,NaCl\n")
    cfg = root / "small.yaml"
    candidates = SMALL_RUN_CANDIDATES.format(root=root)
    text = small_config(root, "small", candidates, "{top_k: 5, max_e_above_hull: 0.1}")
    cfg.write_text(text + "report: {importances: true}\n")
    result = CliRunner().invoke(app, ["run", str(cfg)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return root / "results" / "small"


@pytest.fixture(scope="session")
def slurm(tmp_path_factory: pytest.TempPathFactory):
    """A real single-node SLURM cluster (``tests/batch/slurm_cluster.py``), one per test
    session, that the client commands, ``miscreen`` and the jobs reach through
    ``SLURM_CONF``; skipped when SLURM is not installed (a failure with
    ``MISCREEN_REQUIRE_SLURM=1``)."""
    from tests.batch.slurm_cluster import require_slurm, slurm_cluster

    require_slurm()
    with (
        slurm_cluster(tmp_path_factory.mktemp("slurm")) as cluster,
        pytest.MonkeyPatch.context() as mp,
    ):
        mp.setenv("SLURM_CONF", str(cluster.conf))
        yield cluster
