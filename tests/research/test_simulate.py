"""Simulated campaigns on a synthetic pool whose best rows are known."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from benchmarks.research.simulate import Target, simulate_campaign
from miscreen.suggest import read_campaign, write_campaign

SEEDS = range(6)


def _pool(n: int = 300) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A smooth peak in 4-d: the best rows sit together near (0.8, 0.8, ., .)."""
    rng = np.random.default_rng(42)
    X = rng.random((n, 4))
    y = -6.0 + 4.0 * np.exp(-((X[:, 0] - 0.8) ** 2 + (X[:, 1] - 0.8) ** 2) / 0.05)
    groups = [f"sys{i % 60}" for i in range(n)]
    return X, y, groups


def _top(y: np.ndarray) -> tuple[Target, float]:
    cut = float(np.quantile(y, 0.95))
    return Target("top5pct_5", y >= cut, 5), cut


def _needed(acq: str, seed: int) -> int:
    X, y, groups = _pool()
    target, cut = _top(y)
    res = simulate_campaign(
        X, y, groups, acq, seed=seed, targets=[target], fast_threshold=cut, n_estimators=20
    )
    assert res.reached["top5pct_5"] is not None
    return res.reached["top5pct_5"]


def test_mli_finds_the_best_rows_with_fewer_measurements_than_random() -> None:
    mli = [_needed("mli", s) for s in SEEDS]
    rand = [_needed("random", s) for s in SEEDS]
    assert np.median(mli) * 2 <= np.median(rand), (mli, rand)


def test_campaign_bookkeeping() -> None:
    X, y, groups = _pool()
    target, cut = _top(y)
    ids = [f"r{i}" for i in range(len(y))]
    res = simulate_campaign(
        X, y, groups, "ei", seed=1, init_size=8, batch=4, targets=[target],
        fast_threshold=cut, n_estimators=10, ids=ids,
    )  # fmt: skip
    assert len(set(res.order)) == len(res.order)  # no row measured twice
    initial = list(res.order[: res.init_size])
    assert res.init_size == 8 and not target.mask[initial].any()
    counts = [r.n_measured for r in res.rounds]
    assert counts[0] == 8 and all(0 < b - a <= 4 for a, b in itertools.pairwise(counts))
    for r in res.rounds[1:]:
        systems = [groups[int(i[1:])] for i in r.suggested]
        assert len(set(systems)) == len(systems)  # one per chemical system per batch
        assert r.measured == {i: y[int(i[1:])] for i in r.suggested}
        assert "mae_unmeasured" in r.metrics
    assert res.rounds[-1].found["top5pct_5"] >= 5
    assert res.reached["top5pct_5"] == res.rounds[-1].n_measured
    curve = res.curve()
    assert list(curve["n_measured"]) == counts and curve["top5pct_5"].is_monotonic_increasing


def test_the_simulation_log_round_trips(tmp_path) -> None:
    X, y, groups = _pool(120)
    res = simulate_campaign(X, y, groups, "ucb", seed=0, max_measured=30, n_estimators=10)
    assert res.rounds[-1].n_measured == 30
    path = write_campaign(tmp_path / "campaign.jsonl", res.rounds)
    assert read_campaign(path) == list(res.rounds)


def test_bad_campaigns_are_clear_errors() -> None:
    X, y, groups = _pool(60)
    with pytest.raises(ValueError, match="unknown acquisition function 'greedy'"):
        simulate_campaign(X, y, groups, "greedy")
    with pytest.raises(ValueError, match="init_size=500 is too many"):
        simulate_campaign(X, y, groups, "mli", init_size=500)
    with pytest.raises(ValueError, match="groups has 3 entries for 60 rows"):
        simulate_campaign(X, y, groups[:3], "mli")


def test_a_prior_leads_the_cold_start_until_a_fast_row_is_measured() -> None:
    X, y, groups = _pool()
    target, cut = _top(y)
    # a label-free guess of where the peak lies (it reads X only)
    prior = -((X[:, 0] - 0.75) ** 2 + (X[:, 1] - 0.75) ** 2)
    kwargs = {"targets": [target], "fast_threshold": cut, "n_estimators": 10}
    res = simulate_campaign(X, y, groups, "mli", seed=0, prior=prior, **kwargs)
    first = next(r.round for r in res.rounds if any(v >= cut for v in r.measured.values()))
    assert first >= 1
    for r in res.rounds[1:]:
        guided = r.note.startswith("cold start")
        assert guided == (r.round <= first)  # until the round that measured a fast row
        assert ("mae_unmeasured" in r.metrics) != guided  # no model is fitted meanwhile
    plain = simulate_campaign(X, y, groups, "mli", seed=0, **kwargs)
    assert res.reached["top5pct_5"] < plain.reached["top5pct_5"]
    with pytest.raises(ValueError, match="one finite score per row"):
        simulate_campaign(X, y, groups, "mli", prior=prior[:10], **kwargs)
