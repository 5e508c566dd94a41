"""A finished command exits 0, every time (issue 27 point 13): ``miscreen run`` once aborted
at exit with ``terminate called without an active exception`` (exit 134). At exit a
command holds native threads of Arrow (Parquet), OpenBLAS and, before the fix, PyTorch,
which skops pulled in through scikit-learn's estimator discovery in every process that
loads a model; miscreen never uses PyTorch there, so such a process no longer imports it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.fuzz.helpers import small_model_folder


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_model_folder(tmp_path_factory.mktemp("models"))


def test_predict_exits_cleanly_every_time_without_importing_torch(
    model: Path, tmp_path: Path
) -> None:
    src = tmp_path / "in.csv"
    src.write_text("composition\nLi2O\nLi3PS4\nLi6PS5Cl\n")
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    for attempt in range(5):
        out = tmp_path / f"o{attempt}.parquet"  # Parquet: Arrow's thread pools run
        args = ["predict", "--model", str(model), "--input", str(src), "--out", str(out)]
        flags = ["-X", "importtime"] if attempt == 0 else []
        proc = subprocess.run(
            [sys.executable, *flags, "-m", "miscreen", *args],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )
        assert proc.returncode == 0, (attempt, proc.returncode, proc.stderr[-3000:])
        assert "terminate called" not in proc.stderr
        assert pd.read_parquet(out)["predicted_log10_sigma"].notna().all()
        if flags:
            imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()}
            assert "skops.io" in imported and "sklearn" in imported
            assert "torch" not in imported
