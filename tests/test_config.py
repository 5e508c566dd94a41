from __future__ import annotations

from pathlib import Path

import pytest

from miscreen.config import ConfigError, JsonlSource, load_config

REPO = Path(__file__).resolve().parents[1]


def test_default_config_is_valid():
    cfg = load_config(REPO / "configs" / "default.yaml")
    assert cfg.run_name == "default"
    assert cfg.data.censored == "bound"
    # a discovery run: both Materials Project snapshots, measured materials left out
    assert [c.dataset for c in cfg.candidates] == ["mp-2018", "matbench-dielectric"]
    assert cfg.screen.exclude_known and cfg.screen.max_e_above_hull == 0.05
    assert not cfg.model.tune and cfg.model.hyperparameters  # searched once, recorded


def test_unknown_key_names_key_and_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("run_name: x\nmodel:\n  n_estimatorz: 10\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*unknown key 'model\.n_estimatorz'"):
        load_config(path)


def test_misspelt_key_gets_a_suggestion(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("screen:\n  require_any_element: [O]\nmodle: {}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "unknown key 'screen.require_any_element' (did you mean 'require_any_elements'?)" in str(
        err.value
    )
    assert "unknown key 'modle' (did you mean 'model'?)" in str(err.value)


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


def test_data_and_cache_folders_come_from_the_config_unless_the_environment_says(
    tmp_path, monkeypatch
):
    path = tmp_path / "c.yaml"
    path.write_text(f"data_dir: {tmp_path}/d\ncache_dir: {tmp_path}/c\n")
    monkeypatch.delenv("MISCREEN_DATA_DIR", raising=False)
    monkeypatch.delenv("MISCREEN_CACHE_DIR", raising=False)
    cfg = load_config(path)
    assert cfg.data_path == tmp_path / "d" and cfg.cache_path == tmp_path / "c"
    assert load_config(tmp_path / "c.yaml").folders()["feature_cache"] == str(tmp_path / "c")
    (tmp_path / "d.yaml").write_text(f"data_dir: {tmp_path}/d\n")
    assert load_config(tmp_path / "d.yaml").cache_path == tmp_path / "d" / "cache" / "features"
    monkeypatch.setenv("MISCREEN_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("MISCREEN_CACHE_DIR", str(tmp_path / "envcache"))
    assert cfg.data_path == tmp_path / "env" and cfg.cache_path == tmp_path / "envcache"
