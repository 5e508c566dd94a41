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


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("features: {time_limit_s: 1.0e-9}", "features.time_limit_s", "no structure can finish"),
        (
            "features: {time_limit_s: 0.001}",
            "features.time_limit_s",
            "greater than or equal to 0.1",
        ),
        ("features: {time_limit_s: 1.0e+9}", "features.time_limit_s", "above a day"),
        ("features: {time_limit_s: .nan}", "features.time_limit_s", "finite number"),
        ("features: {jobs: 100000}", "features.jobs", "processes on one machine"),
        ("model: {n_estimators: 100000000}", "model.n_estimators", "trees per model"),
        ("model: {cv_folds: 1000000}", "model.cv_folds", "each costing a fit"),
        ("seed: 100000000000000000000", "seed", "seeds in [0, 2**32)"),
        ("seed: -1", "seed", "seeds in [0, 2**32)"),
        ("screen: {top_k: 10000000}", "screen.top_k", "candidates listed"),
        ("screen: {barrier_weight: .inf}", "screen.barrier_weight", "finite number"),
        ("batch: {chunk_size: 100000000}", "batch.chunk_size", "held in memory"),
        ("batch: {slurm: {shards: 1000000}}", "batch.slurm.shards", "job array"),
    ],
)
def test_every_number_has_bounds_with_their_reason(tmp_path, text, key, reason):
    path = tmp_path / "c.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert f"'{key}'" in str(err.value) and reason in str(err.value)


def test_the_bounds_keep_the_defaults_and_their_edges(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "seed: 4294967295\nfeatures: {time_limit_s: 0.1, jobs: 1024}\n"
        "model: {n_estimators: 10000, cv_folds: 50}\n"
    )
    cfg = load_config(path)
    assert cfg.seed == 2**32 - 1 and cfg.features.time_limit_s == 0.1
    assert load_config(REPO / "configs" / "default.yaml").features.time_limit_s > 0.1


def test_a_folder_key_naming_a_file_says_which_key(tmp_path, monkeypatch):
    (tmp_path / "afile").write_text("x")
    for key in ("cache_dir", "data_dir", "results_dir", "models_dir"):
        for target in (tmp_path / "afile", tmp_path / "afile" / "below"):
            path = tmp_path / "c.yaml"
            path.write_text(f"{key}: {target}\n")
            with pytest.raises(ConfigError, match=rf"'{key}'.*{target} is not a folder"):
                load_config(path)
    monkeypatch.setenv("MISCREEN_CACHE_DIR", str(tmp_path / "afile"))
    with pytest.raises(ConfigError, match=r"MISCREEN_CACHE_DIR.*is not a folder"):
        _ = load_config(REPO / "configs" / "default.yaml").cache_path
