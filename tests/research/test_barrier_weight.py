"""The barrier-weight study (``benchmarks/barrier_weight.py``) recovers a known weight,
chooses 0 when the barrier carries no signal, and scores censored rows at their bound."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from miscreen import schema as S
from tests.research import import_benchmark

N = 300
OTHER = ("B", "Al", "Si", "P", "S", "Ti", "Zr", "La", "Ge", "Nb")


@pytest.fixture(scope="module")
def study() -> ModuleType:
    """``benchmarks/barrier_weight.py``, imported without keeping its environment changes."""
    return import_benchmark("barrier_weight")


def _rows(seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Measured rows with 30 DOIs, 10 chemical systems, and barriers in 0.2-1.5 eV."""
    rng = np.random.default_rng(seed)
    labels = pd.DataFrame(
        {
            S.ID: [f"r{i}" for i in range(N)],
            S.DOI: [f"doi{i % 30}" for i in range(N)],
            S.COMPOSITION: [f"Li{1 + i % 3}{OTHER[i % 10]}O{2 + i % 4}" for i in range(N)],
            S.TARGET: rng.normal(-5.0, 2.0, N),
            S.CENSORED: False,
            S.CENSOR_BOUND: np.nan,
        }
    )
    return labels, rng.uniform(0.2, 1.5, N)


def _folds(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rows = np.arange(n)
    return [(np.setdiff1d(rows, test), test) for test in np.array_split(rows, 5)]


@pytest.mark.parametrize("w_true", [0.75, 1.5, 3.0])
def test_a_known_weight_is_recovered(study: ModuleType, w_true: float) -> None:
    labels, e3d = _rows(1)
    noise = np.random.default_rng(2).normal(0.0, 0.1, N)
    mu = labels[S.TARGET].to_numpy() + w_true * (e3d - np.median(e3d)) + noise
    assert study.select_weight(labels, mu, e3d, _folds(N)) == w_true


def test_no_barrier_effect_gives_zero(study: ModuleType) -> None:
    labels, e3d = _rows(3)
    mu = labels[S.TARGET].to_numpy() + np.random.default_rng(4).normal(0.0, 1.0, N)
    assert study.select_weight(labels, mu, e3d, _folds(N)) == 0.0


def test_censored_rows_count_at_their_bound(study: ModuleType) -> None:
    """Censored rows predicted at their bound are exact; a weight that pushes them towards
    the upstream -15 only hurts the measured rows, so it is not chosen (scored at -15, the
    largest weight would win)."""
    labels, e3d = _rows(5)
    censored = np.arange(N) % 3 == 0
    labels.loc[censored, [S.TARGET, S.CENSORED, S.CENSOR_BOUND]] = [-15.0, True, -10.0]
    high = np.where(censored, 1.5, e3d)  # censored rows: the highest barriers
    mu = np.where(censored, -10.0, labels[S.TARGET].to_numpy())
    assert study.select_weight(labels, mu, high, _folds(N)) == 0.0


def test_rows_without_a_path_take_the_highest_barrier(study: ModuleType) -> None:
    filled = study.fill_no_path(np.array([0.3, np.nan, 0.9, np.nan]))
    assert filled.tolist() == [0.3, 0.9, 0.9, 0.9]


def test_nested_cv_chooses_the_weight_on_every_fold(study: ModuleType) -> None:
    labels, e3d = _rows(6)
    mu = labels[S.TARGET].to_numpy() + 2.0 * (e3d - np.median(e3d))
    result = study.nested_cv(labels, mu, e3d, study.scheme_groups(labels, "chemsys"))
    assert [f["w"] for f in result["folds"]] == [2.0] * 5
    assert result["mae_chosen"] < 0.1 * result["mae_w0"]
    assert result["folds_better"] == 5


def test_a_weight_is_adopted_only_when_every_grouping_gains_beyond_noise(
    study: ModuleType,
) -> None:
    def result(doi: tuple[float, float], chemsys: tuple[float, float]) -> dict:
        return {
            s: {"mae_change_mean": mean, "mae_change_se": se}
            for s, (mean, se) in (("doi", doi), ("chemsys", chemsys))
        }

    assert study.adopted(result((-0.1, 0.02), (-0.08, 0.03)))
    assert not study.adopted(result((-0.1, 0.02), (0.02, 0.01)))  # one grouping worse
    assert not study.adopted(result((-0.03, 0.02), (-0.08, 0.03)))  # within twice the noise
