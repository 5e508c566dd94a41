from __future__ import annotations

from pathlib import Path

import pytest

from miscreen.config import ConfigError, JsonlSource, load_config

REPO = Path(__file__).resolve().parents[1]


def test_default_config_is_valid():
    cfg = load_config(REPO / "configs" / "default.yaml")
    assert cfg.run_name == "default"
    assert cfg.data.censored == "floor"
    assert [c.kind for c in cfg.candidates] == ["obelix", "pymatgen"]


def test_unknown_key_names_key_and_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("run_name: x\nmodel:\n  n_estimatorz: 10\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*unknown key 'model\.n_estimatorz'"):
        load_config(path)


def test_bad_value_names_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("data:\n  censored: ignore\n")
    with pytest.raises(ConfigError, match=r"'data\.censored'.*ignore"):
        load_config(path)


def test_candidate_sources_are_discriminated(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("candidates:\n  - kind: jsonl\n    dataset: mp-2018\n")
    cfg = load_config(path)
    assert isinstance(cfg.candidates[0], JsonlSource)


def test_missing_file_is_clear(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
