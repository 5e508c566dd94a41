"""Configs cost neither time nor memory however they are written (issue 16): YAML alias
bombs, recursive anchors and deep nesting are refused before anything is built, error
messages never print a huge value, and the run name stays one folder name."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from miscreen.cli import app
from miscreen.config import ConfigError, load_config


def _bomb(levels: int = 9, width: int = 9) -> list[str]:
    """The 'billion laughs' anchors: each level repeats the one before ``width`` times."""
    lines = ["l0: &a0 [" + ", ".join(['"lol"'] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return lines


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # inside a typed field: used to take 59 s and 3.5 GB before a MemoryError
        ("screen:\n  require_elements:\n"
         + "\n".join(f"    - {ln.split(': ', 1)[1]}" for ln in _bomb()) + "\n",
         "expands to more than"),
        ("x: 1\n" + "\n".join(_bomb()) + "\nscreen: {require_elements: *a8}\n",
         "expands to more than"),
        # inside batch.dask.jobqueue (dict[str, Any]): used to pass validation
        ("batch:\n  dask:\n    jobqueue:\n" + "\n".join(f"      {ln}" for ln in _bomb()) + "\n",
         "expands to more than"),
        ("a: &a [*a]\n", "refers to the value that contains it"),
        ("run_name: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
        ("run_name: '..'\n", "not a folder name"),
        ("run_name: '.'\n", "not a folder name"),
        ("run_name: ../../etc\n", "run_name"),
    ],
)  # fmt: skip
def test_hostile_configs_are_refused_quickly(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=message) as err:
        load_config(path)
    assert time.perf_counter() - start < 5
    assert len(str(err.value)) < 3000


def test_a_bad_value_is_shown_as_a_short_excerpt(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  n_estimators: [" + ", ".join(['"' + "x" * 5000 + '"'] * 50) + "]\n")
    with pytest.raises(ConfigError, match=r"model\.n_estimators") as err:
        load_config(path)
    assert len(str(err.value)) < 1000


def test_big_or_binary_configs_are_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * (2 << 20) + "\n")
    with pytest.raises(ConfigError, match="at most"):
        load_config(big)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"run_name: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(binary)
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)


def test_a_few_aliases_are_still_fine(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "screen:\n  require_elements: &els [Li, P, S]\ndata:\n  exclude_families: *els\n"
        "run_name: ok-run\n"
    )
    cfg = load_config(path)
    assert cfg.screen.require_elements == ("Li", "P", "S") and cfg.run_name == "ok-run"


def test_the_cli_reports_a_hostile_config_as_one_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("batch:\n  dask:\n    jobqueue:\n" + "\n".join(f"      {ln}" for ln in _bomb()))
    res = CliRunner().invoke(app, ["train", str(path)])
    assert res.exit_code == 2 and "expands to more than" in res.output
    assert "Traceback" not in res.output


def test_a_tiny_time_limit_is_a_config_error_not_a_signal(tmp_path: Path) -> None:
    """``time_limit_s: 1e-9`` used to end the process with SIGALRM (exit 142)."""
    import subprocess
    import sys

    path = tmp_path / "c.yaml"
    path.write_text(f"results_dir: {tmp_path}/r\nmodels_dir: {tmp_path}/m\n"
                    "features: {time_limit_s: 1.0e-9}\n")  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "miscreen", "train", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "features.time_limit_s" in proc.stderr and "no structure can finish" in proc.stderr
