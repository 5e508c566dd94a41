"""`miscreen benchmark obelix` on a small model: every metric the issue names, honestly."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from miscreen.cli import app

SMALL = """
run_name: bench
results_dir: {root}/results
models_dir: {root}/models
features: {{preset: composition}}
model: {{kind: extra_trees, n_estimators: 30, cv_folds: 3}}
"""


def test_benchmark_writes_every_metric(tmp_path):
    cfg = tmp_path / "b.yaml"
    cfg.write_text(SMALL.format(root=tmp_path))
    out = tmp_path / "results" / "benchmark-obelix"
    args = ["benchmark", "obelix", "--config", str(cfg), "--out", str(out)]
    res = CliRunner().invoke(app, [*args, "--kinds", "extra_trees,random_forest"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    m = json.loads((out / "metrics.json").read_text())
    assert m["test_n"] == 121 and m["test_n_cif_subset"] == 67
    assert m["test_n_uncensored"] == 113
    # errors in log10 S/cm: finite, positive, and far below the spread of the labels (about
    # 10 decades); NaN or a constant prediction would fail these
    for key in ("test_mae", "test_rmse", "cv_mae", "grouped_cv_mae"):
        assert math.isfinite(m[key]) and 0.3 < m[key] < 3.0, key
    assert m["test_mae"] <= m["test_rmse"] < 4.0
    assert 0.0 < m["test_r2"] < 1.0  # better than predicting the mean, not perfect
    assert 0.3 < m["test_spearman"] <= 1.0
    # grouped CV keeps each publication in one fold: it is harder than shuffled folds
    assert m["grouped_cv_mae"] > m["cv_mae"]
    assert 0.3 < m["grouped_cv_spearman"] <= 1.0  # out-of-fold ranks follow the measurements
    assert 0.5 < m["coverage_80"] <= m["coverage_95"] <= 1.0
    families = m["leave_one_family_out_mae"]
    assert {"NASICON", "garnet", "perovskites", "argyrodites", "LGPS"} <= set(families)
    assert all(v["n"] >= 20 for v in families.values())
    assert set(m["model_kind_grouped_cv_mae"]) == {"extra_trees", "random_forest"}
    # each target is judged on the value the benchmark measured, in the right direction
    for key, t in m["targets"].items():
        assert t["value"] == pytest.approx(m[key]), key
        assert t["met"] == (
            t["value"] >= t["target"] if "spearman" in key else t["value"] <= t["target"]
        )
        assert f"target {key} {t['target']}: {t['value']:.3f}" in res.output
    table = (out / "table.md").read_text()
    assert f"| test MAE, all rows | {m['test_mae']:.3f} | 121 |" in table
    assert "| test MAE, rows with CIFs |" in (out / "table.md").read_text()
    assert "target test_mae 1.25" in res.output
    # every input kind users bring, on all 121 rows, each served by models whose features it has
    assert m["test_n_composition_only"] == m["test_n_cell"] == 121
    assert m["models_composition_only"] == ["composition"]
    assert set(m["models_cell"]) <= {"cell", "composition"}
    for key in ("test_mae_composition_only", "test_mae_cell"):
        assert math.isfinite(m[key]) and 0.3 < m[key] < 3.0, key
    assert 0.3 < m["test_spearman_composition_only"] <= 1.0
    for kind in ("composition_only", "cell"):
        assert 0.5 < m[f"coverage_80_{kind}"] <= m[f"coverage_95_{kind}"] <= 1.0, kind
    # a targeted Spearman is met when it is at least the target (it was read as an MAE)
    t = m["targets"]["test_spearman_composition_only"]
    assert t["met"] == (t["value"] >= 0.70)
    # an interval reaching a censored row's bound covers it: never below plain coverage
    for level in ("80", "95"):
        assert m[f"coverage_{level}_bound_aware"] >= m[f"coverage_{level}"]
    # a censored row predicted at or below its bound counts as exact: never worse than plain
    assert m["test_mae_bound_aware"] <= m["test_mae"]
    for key in ("loco_cv_mae", "chemsys_cv_mae", "new_chemistry_cv_mae"):
        assert m[key] > m["cv_mae"], key  # harder than shuffled folds
    # the model before issue 13 on the same leave-cluster-out folds, and the change
    reference = m["loco_cv_mae_reference"]
    assert reference > m["cv_mae"]
    assert m["loco_cv_mae_change"] == pytest.approx(m["loco_cv_mae"] / reference - 1)
    assert "the model before issue 13" in (out / "table.md").read_text()
    signed = m["family_mean_signed_error"]
    assert sum(v["n"] for v in signed.values()) == 121
    off = {f for f, v in signed.items() if abs(v["mean"]) > 1}
    assert set(m["families_off_by_more_than_one_decade"]) == off
    assert not (tmp_path / "models").exists()  # a benchmark trains in memory only
