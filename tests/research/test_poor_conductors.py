"""Helpers of the poor-conductor study: forest leaf weights, shrinkage, P(fast)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import ExtraTreesRegressor

from benchmarks.research.poor_conductors import leaf_weights, p_fast, shrink


def test_leaf_weights_rebuild_the_mean_of_the_trees() -> None:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 4)), rng.normal(size=60)
    forest = ExtraTreesRegressor(25, min_samples_leaf=3, random_state=0).fit(X, y)
    query = rng.normal(size=(7, 4))
    W = leaf_weights(forest, X, query)
    assert W.shape == (7, 60)
    np.testing.assert_allclose(W.sum(axis=1), 1.0)
    np.testing.assert_allclose(W @ y, forest.predict(query), rtol=1e-5, atol=1e-5)


def test_leaf_weights_of_a_training_row_in_single_row_leaves_are_its_own() -> None:
    X = np.arange(10, dtype=float)[:, None]
    forest = ExtraTreesRegressor(5, random_state=0).fit(X, X[:, 0])
    W = leaf_weights(forest, X, X[3:4])
    assert W[0, 3] == pytest.approx(1.0)


def test_shrink_leaves_rows_inside_the_domain_and_pulls_far_rows_to_the_centre() -> None:
    pred = np.array([-8.0, -8.0, -8.0, -2.0])
    rel = np.array([0.5, 1.0, 3.0, 3.0])
    out = shrink(pred, rel, centre=-4.0, lam=1.0)
    np.testing.assert_allclose(out[:2], -8.0)
    assert out[2] == pytest.approx(-4.0 - 4.0 / 3.0)
    assert out[3] == pytest.approx(-4.0 + 2.0 / 3.0)
    np.testing.assert_allclose(shrink(pred, rel, -4.0, 0.0), pred)


def test_p_fast_is_one_half_at_the_threshold_and_follows_the_interval() -> None:
    assert p_fast(np.array([-4.0]), np.array([2.0]), 0.8, -4.0)[0] == pytest.approx(0.5)
    # the threshold at the lower end of the 80 % interval: P(above) = 0.9
    assert p_fast(np.array([-2.0]), np.array([2.0]), 0.8, -4.0)[0] == pytest.approx(0.9)
    wide = p_fast(np.array([-6.0]), np.array([4.0]), 0.8, -4.0)[0]
    narrow = p_fast(np.array([-6.0]), np.array([1.0]), 0.8, -4.0)[0]
    assert narrow < wide < 0.5
