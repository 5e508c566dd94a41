"""The censored-label study's decision rule minimises both expected errors it claims to, and
its verdict names the best treatment per metric."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
from scipy.stats import norm

from tests.research import import_benchmark

FLOOR, BOUND = -15.0, -10.0


@pytest.fixture(scope="module")
def censored() -> ModuleType:
    """``benchmarks/censored.py``, imported without keeping its environment changes."""
    return import_benchmark("censored")


def expected_errors(x: np.ndarray, p: float, mu: float, sd: float) -> tuple[np.ndarray, ...]:
    """Expected official and bound-aware absolute errors of predictions ``x`` for a row that
    is censored (label -15, bound -10) with probability ``p`` and else N(mu, sd), by
    quadrature over the measured-row distribution."""
    y = mu + sd * norm.ppf(np.linspace(0.0005, 0.9995, 2000))
    measured = np.abs(x[:, None] - y[None, :]).mean(axis=1)
    official = p * np.abs(x - FLOOR) + (1 - p) * measured
    bound_aware = p * np.maximum(x - BOUND, 0.0) + (1 - p) * measured
    return official, bound_aware


@pytest.mark.parametrize("p", [0.0, 0.1, 0.3, 0.45, 0.6, 0.9])
def test_each_rule_minimises_its_expected_error(censored: ModuleType, p: float) -> None:
    mu, sd = -4.0, 1.2
    pred, prob, spread = np.array([mu]), np.array([p]), np.array([sd])
    official = censored.decision(pred, prob, spread, FLOOR)[0]
    bound_aware = censored.decision(pred, prob, spread, BOUND, BOUND)[0]
    grid = np.linspace(-16, 0, 3201)
    for x, expected in zip((official, bound_aware), expected_errors(grid, p, mu, sd), strict=True):
        assert np.interp(x, grid, expected) <= expected.min() + 1e-3, (p, x)


def test_the_rules_agree_below_one_half_and_part_above(censored: ModuleType) -> None:
    p = np.array([0.0, 0.2, 0.4, 0.49, 0.5, 0.8])
    pred, sd = np.full(6, -3.0), np.full(6, 1.0)
    official = censored.decision(pred, p, sd, FLOOR)
    bound_aware = censored.decision(pred, p, sd, BOUND, BOUND)
    assert official[0] == pytest.approx(-3.0)  # no censored mass: the median
    assert np.all(np.diff(official[:5]) < 0)
    np.testing.assert_allclose(official[:4], bound_aware[:4])
    assert list(official[4:]) == [FLOOR, FLOOR] and list(bound_aware[4:]) == [BOUND, BOUND]


def test_the_verdict_says_whether_one_treatment_wins_both(censored: ModuleType) -> None:
    same = {"bound": {"mae": 1.0, "bmae": 0.8}, "floor": {"mae": 1.1, "bmae": 0.9}}
    split = {"bound": {"mae": 1.2, "bmae": 0.8}, "floor": {"mae": 1.1, "bmae": 0.9}}
    assert censored.verdict(same) == {
        "best_official": "bound", "best_bound_aware": "bound", "one_wins_both": True
    }  # fmt: skip
    assert censored.verdict(split)["one_wins_both"] is False
