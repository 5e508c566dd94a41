"""Shared fixtures: the real data mirror at ../shared/data (CI sets MISCREEN_MIRROR)."""

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
