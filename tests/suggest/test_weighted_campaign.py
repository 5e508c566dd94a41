"""The simulated campaigns of benchmarks/sequential.py with the prior's weighting."""

from __future__ import annotations

import numpy as np

from benchmarks.research.simulate import Target, simulate_campaign


def _pool(n: int = 120) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """Random features and labels; a prior that rates the even rows 0.9, the odd 0.1."""
    rng = np.random.default_rng(7)
    X = rng.random((n, 4))
    y = -6.0 + 4.0 * X[:, 0] + rng.normal(0, 0.3, n)
    groups = [f"sys{i % 40}" for i in range(n)]
    prior = np.where(np.arange(n) % 2 == 0, 0.9, 0.1)
    return X, y, groups, prior


def _targets(y: np.ndarray) -> list[Target]:
    return [
        Target("first_fast", y >= -3.0, 1),
        Target("top5pct_5", y >= np.quantile(y, 0.95), 5),
    ]


def test_the_weighting_starts_after_the_cold_start() -> None:
    X, y, groups, prior = _pool()
    for seed in range(3):
        old = simulate_campaign(
            X, y, groups, "mli", seed=seed, targets=_targets(y), n_estimators=10, prior=prior
        )
        new = simulate_campaign(
            X,
            y,
            groups,
            "mli",
            seed=seed,
            targets=_targets(y),
            n_estimators=10,
            prior=prior,
            weighted=True,
        )
        # the same campaign until the cold start ends; then the weighting changes the picks
        cold = [r for r in old.rounds if r.note.startswith("cold")]
        assert cold and new.rounds[: len(cold) + 1] == old.rounds[: len(cold) + 1]
        assert new.order != old.order


def test_the_weighting_prefers_the_rows_the_prior_rates() -> None:
    X, y, groups, prior = _pool()
    kwargs = {"seed": 0, "n_estimators": 10, "max_measured": 60}
    shares = {}
    for weighted in (False, True):
        res = simulate_campaign(
            X, y, groups, "mli", targets=_targets(y), prior=prior, weighted=weighted, **kwargs
        )
        warm = [
            int(i) for r in res.rounds[1:] if not r.note.startswith("cold") for i in r.suggested
        ]
        assert warm, "the campaign never left the cold start"
        shares[weighted] = float(np.mean(prior[warm] > 0.5))
    assert shares[True] > shares[False]
