"""End to end: a small configured run writes every output, deterministically, and bad
input rows end up in failures.csv instead of stopping the run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from miscreen.cli import app
from tests.conftest import small_config

CANDIDATES = """
  - kind: pymatgen
  - kind: csv
    path: {root}/cands.csv
"""


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    (root / "cands.csv").write_text(
        "id,composition,structure\n"
        "ok1,Li6PS5Cl,\n"
        "bad-formula,Li3(Mo8S8O8(OH)8(HWO5(H2O)))*(H2O)18,\n"
        "no-li,NaCl,\n"
        "missing-cif,,nowhere.cif\n"
    )
    runner = CliRunner()
    outputs = []
    for name in ("a", "b"):
        cfg = root / f"{name}.yaml"
        cfg.write_text(small_config(root, name, CANDIDATES.format(root=root), "{top_k: 5}"))
        result = runner.invoke(app, ["run", str(cfg)])
        assert result.exit_code == 0, result.output + repr(result.exception)
        (root / f"{name}.out").write_text(result.output)
        outputs.append(root / "results" / name)
    return root, outputs


def test_run_writes_every_output(small_run):
    _, (run, _) = small_run
    for name in (
        "candidates.csv",
        "candidates.parquet",
        "metrics.json",
        "failures.csv",
        "manifest.json",
        "report.html",
        "test_predictions.csv",
    ):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_n"] == 121 and metrics["test_n_cif_subset"] == 67
    assert metrics["cv_n"] == 478
    for key in ("test_mae", "test_mae_cif_subset", "test_spearman", "test_r2", "cv_mae"):
        assert 0 < abs(metrics[key]) < 5, key
    manifest = json.loads((run / "manifest.json").read_text())
    shas = {Path(e["path"]).name: e["sha256"] for e in manifest["stages"]["train"]["inputs"]}
    assert shas["train.csv"].startswith("01d87779")
    assert manifest["packages"]["scikit-learn"] and manifest["seed"] == 0
    assert {"train", "screen", "run"} <= set(manifest["stages"])


def test_candidates_ranked_with_reasons(small_run):
    _, (run, _) = small_run
    cands = pd.read_csv(run / "candidates.csv")
    assert list(cands.columns[:6]) == [
        "rank",
        "id",
        "source",
        "formula",
        "predicted_log10_sigma",
        "uncertainty",
    ]
    ranked = cands[cands["rank"].notna()]
    assert list(ranked["rank"]) == list(range(1, len(ranked) + 1))
    # ranked by the score (default p_fast: a wider interval can rank a lower prediction first)
    assert ranked["score"].is_monotonic_decreasing
    assert (ranked["score"] == ranked["p_fast"]).all()
    assert (ranked["uncertainty"] > 0).all()
    assert {"pymatgen:Li10GeP2S12", "ok1"} <= set(ranked["id"])
    no_li = cands.set_index("id").loc["no-li"]
    assert pd.isna(no_li["rank"]) and "lacks required element(s) Li" in no_li["excluded_reason"]


def test_bad_rows_become_failures(small_run):
    _, (run, _) = small_run
    failures = pd.read_csv(run / "failures.csv").set_index("id")
    assert "unparsable composition" in failures.loc["bad-formula", "reason"]
    assert "cands.csv line 3" in failures.loc["bad-formula", "reason"]
    assert "nowhere.cif does not exist" in failures.loc["missing-cif", "reason"]


def test_same_config_and_seed_give_identical_candidates(small_run):
    _, (a, b) = small_run
    assert (a / "candidates.csv").read_bytes() == (b / "candidates.csv").read_bytes()


def test_report_is_self_contained(small_run):
    _, (run, _) = small_run
    html = (run / "report.html").read_text()
    assert "data:image/png;base64," in html and "Therrien" in html
    assert "<script src=" not in html and "<link " not in html
    assert "Li20.2Ge2.06P3.94S24" in html  # pymatgen's disordered LGPS cell is in the top table


def test_train_on_csv_and_predict(small_run, tmp_path):
    root, _ = small_run
    rows = ["composition,log10_sigma"] + [
        f"Li{n}P{m}S{n + 2},{-3 - 0.1 * n - 0.2 * m}" for n in range(1, 9) for m in range(1, 4)
    ]
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\nXx,1\n")
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "train",
            "--data",
            str(tmp_path / "train.csv"),
            "--out",
            str(tmp_path / "m"),
            "--preset",
            "composition",
        ],
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert (tmp_path / "m" / "composition" / "model.json").is_file()
    res = runner.invoke(
        app,
        [
            "predict",
            "--model",
            str(tmp_path / "m"),
            "--input",
            str(root / "cands.csv"),
            "--out",
            str(tmp_path / "p.csv"),
        ],
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    pred = pd.read_csv(tmp_path / "p.csv").set_index("id")
    assert pred.loc["ok1", "predicted_log10_sigma"] < -2
    assert pred.loc["ok1", "model"] == "composition"
    assert "skipped bad-formula" in res.output


def test_cli_reports_config_errors(tmp_path):
    cfg = tmp_path / "x.yaml"
    cfg.write_text("run_nam: typo\n")
    res = CliRunner().invoke(app, ["run", str(cfg)])
    assert res.exit_code == 2 and "unknown key 'run_nam'" in res.output


def test_manifest_records_folders_and_models_carry_a_card(small_run):
    root, (run, _) = small_run
    manifest = json.loads((run / "manifest.json").read_text())
    folders = manifest["stages"]["train"]["folders"]
    assert Path(folders["data"]) == Path(os.environ["MISCREEN_DATA_DIR"])
    assert Path(folders["feature_cache"]).is_dir()  # the run cached its features there
    assert folders["models"] == str(root / "models" / "a")
    card = (root / "models" / "a" / "composition" / "MODEL_CARD.md").read_text()
    assert "composition" in card and "OBELiX" in card
    assert not list((root / "models").glob(".a.*"))  # no staging folder left behind


def test_run_ends_with_the_top_candidates_and_the_report_path(small_run):
    root, (run, _) = small_run
    printed = (root / "a.out").read_text()
    ranked = pd.read_csv(run / "candidates.csv").dropna(subset=["rank"])
    assert f"Top {min(10, len(ranked))} of {len(ranked)} ranked candidates" in printed
    first = ranked.iloc[0]
    sigma_ms = 1e3 * 10 ** first["predicted_log10_sigma"]
    assert f"1. {first['formula']}" in printed and f"{sigma_ms:.3g} mS/cm" in printed
    assert str(first["why"])[:40] in printed
    assert f"report: {run / 'report.html'}" in printed


def test_a_second_train_of_the_same_run_is_refused_at_once(small_run, monkeypatch):
    """`train` and `run` hold the model folder's writer lock from the start: while another
    process writes the run's models, nothing is loaded, fitted or written."""
    import fcntl
    import os

    from miscreen.config import load_config
    from miscreen.errors import ModelFolderBusy
    from miscreen.pipeline import stages

    root, _ = small_run
    cfg = load_config(root / "a.yaml")
    loaded = []
    monkeypatch.setattr(stages, "load_labelled", lambda *a, **k: loaded.append(a))
    lock = cfg.models.root.with_name(f".{cfg.models.root.name}.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another process writing these models
        with pytest.raises(ModelFolderBusy):
            stages.train_stage(cfg)
    finally:
        os.close(fd)
    assert loaded == []
