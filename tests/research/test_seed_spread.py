"""The seed-spread report: per-model spread and the paired difference, ahead in the right
direction (a lower MAE, a higher Spearman)."""

from __future__ import annotations

import pytest

from tests.research import import_benchmark

study = import_benchmark("research.seed_spread")
METRICS, summary = study.METRICS, study.summary


def _row(ours: float, rf: float, rho_ours: float, rho_rf: float) -> dict:
    m = {k: ours for k in METRICS} | {"test_spearman": rho_ours}
    r = {k: rf for k in METRICS} | {"test_spearman": rho_rf}
    return {"miscreen": m, "rf": r}


def test_summary_pairs_seeds_and_counts_who_is_ahead() -> None:
    rows = [_row(1.5, 1.6, 0.7, 0.6), _row(1.7, 1.6, 0.6, 0.65), _row(1.55, 1.5, 0.8, 0.7)]
    s = summary(rows)
    assert s["miscreen"]["test_mae"] == {
        "mean": pytest.approx(1.5833333),
        "min": 1.5,
        "max": 1.7,
    }
    d = s["difference"]["test_mae"]
    assert d["mean"] == pytest.approx((-0.1 + 0.1 + 0.05) / 3)
    assert (d["min"], d["max"]) == (pytest.approx(-0.1), pytest.approx(0.1))
    assert d["miscreen_ahead_seeds"] == 1  # lower MAE on the first seed only
    # a Spearman is ahead when higher: seeds 1 and 3
    assert s["difference"]["test_spearman"]["miscreen_ahead_seeds"] == 2
