"""Acquisition functions on hand-made means and spreads."""

from __future__ import annotations

import numpy as np
import pytest

from miscreen.suggest import ACQUISITIONS, get_acquisition, ranking, score
from miscreen.suggest.acquisition import ei, mei, mli, mu_, random_, ucb

MU = np.array([-4.0, -3.0, -2.0, -3.0])
SD = np.array([1.0, 0.5, 0.5, 2.0])


def test_registry_names() -> None:
    assert set(ACQUISITIONS) == {"mei", "mli", "ucb", "ei", "mu", "random"}


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown acquisition function 'pi'.*mei, mli, ucb"):
        get_acquisition("pi")
    with pytest.raises(ValueError, match="unknown acquisition function"):
        score("MEI", MU, SD, best=-3.0)


def test_mei_is_the_mean_and_mu_the_spread() -> None:
    assert np.array_equal(mei(MU, SD), MU)
    assert np.array_equal(mu_(MU, SD), SD)
    assert np.array_equal(ucb(MU, SD, kappa=1.5), MU + 1.5 * SD)


def test_mli_is_the_probability_of_beating_the_best() -> None:
    p = mli(MU, SD, best=-3.0)
    assert p[1] == pytest.approx(0.5)
    assert p[3] == pytest.approx(0.5)  # same mean, wider: still even odds
    assert p[2] == pytest.approx(0.97725, abs=1e-4)  # two sd above the best
    assert np.all((p >= 0) & (p <= 1))
    # a certain prediction is 0 or 1
    assert list(mli(np.array([-2.0, -4.0]), np.zeros(2), best=-3.0)) == [1.0, 0.0]


def test_ei_rewards_spread_when_the_mean_ties() -> None:
    e = ei(MU, SD, best=-3.0)
    assert np.all(e >= 0)
    assert e[3] > e[1]  # same mean as the best, more spread: more to gain
    assert e[1] == pytest.approx(0.5 * 0.39894, rel=1e-4)  # sd * pdf(0)
    assert list(ei(np.array([-2.0, -4.0]), np.zeros(2), best=-3.0)) == [1.0, 0.0]


def test_random_is_reproducible_by_seed() -> None:
    a = random_(MU, SD, rng=np.random.default_rng(3))
    b = random_(MU, SD, rng=np.random.default_rng(3))
    assert np.array_equal(a, b)


def test_bad_inputs_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="one length"):
        mei(MU, SD[:2])
    with pytest.raises(ValueError, match="sd must be finite and >= 0"):
        mli(MU, -SD, best=-3.0)
    with pytest.raises(ValueError, match="best measured value must be finite"):
        ei(MU, SD, best=float("nan"))


def test_ranking_breaks_ties_by_the_mean() -> None:
    order = ranking(np.array([1.0, 1.0, 0.5]), np.array([-3.0, -2.0, 0.0]))
    assert list(order) == [1, 0, 2]
