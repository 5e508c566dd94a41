"""Simulated campaigns with the physics prior as ``miscreen suggest`` uses it (issue 23):
the cold start ranks by the prior until a fast conductor is measured, then ``mli`` and
``ei`` scores are multiplied by the prior (:func:`miscreen.suggest.prior.weight_by_prior`).

:func:`simulate_prior_campaign` is :func:`benchmarks.research.simulate.simulate_campaign`
(same initial set per seed, same forest seeds, same batch rule and records) with that
weighting added; with ``weighted=False`` it gives the same campaigns as
``simulate_campaign`` (a test checks this), so the cold-start-only method stays a
reference. It lives here until ``simulate_campaign`` takes the weighting itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from benchmarks.research.simulate import (
    FAST_LOG10,
    SimulationResult,
    Target,
    fit_predict,
)
from miscreen.suggest.acquisition import KAPPA, ranking, score
from miscreen.suggest.campaign import CampaignRound
from miscreen.suggest.prior import PRIOR_WEIGHTED, cold_start, weight_by_prior
from miscreen.suggest.selection import select_diverse


def simulate_prior_campaign(
    X: np.ndarray,
    y: np.ndarray,
    groups: Sequence[object] | None,
    acquisition: str,
    prior: np.ndarray,
    targets: Sequence[Target],
    *,
    seed: int = 0,
    init_size: int = 10,
    batch: int = 5,
    max_measured: int | None = None,
    model: str = "random_forest",
    n_estimators: int = 50,
    weighted: bool = True,
    kappa: float = KAPPA,
) -> SimulationResult:
    """One campaign on (``X``, ``y``) with the labels revealed batch by batch, the cold
    start ranked by ``prior`` and, with ``weighted``, ``mli``/``ei`` scores times
    ``prior`` afterwards. Stops once every target is reached or after ``max_measured``."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    prior = np.asarray(prior, dtype=float)
    n = len(y)
    if X.shape[0] != n or prior.shape != (n,) or not np.isfinite(prior).all():
        raise ValueError("X, y and prior need one (finite) entry per row")
    limit = n if max_measured is None else min(int(max_measured), n)
    rng = np.random.default_rng(seed)
    in_target = np.zeros(n, dtype=bool)
    for t in targets:
        in_target |= np.asarray(t.mask, dtype=bool)
    eligible = np.flatnonzero((y < FAST_LOG10) & ~in_target)
    order = [int(i) for i in rng.choice(eligible, size=int(init_size), replace=False)]
    measured = np.zeros(n, dtype=bool)
    measured[order] = True
    reached: dict[str, int | None] = {t.name: None for t in targets}

    def record(r: int, picked: list[int], metrics: dict, note: str) -> CampaignRound:
        count = {t.name: int((np.asarray(t.mask) & measured).sum()) for t in targets}
        for t in targets:
            if reached[t.name] is None and count[t.name] >= t.needed:
                reached[t.name] = int(measured.sum())
        return CampaignRound(
            round=r,
            acquisition=acquisition,
            suggested=tuple(str(i) for i in picked),
            measured={str(i): float(y[i]) for i in picked},
            metrics=metrics,
            n_measured=int(measured.sum()),
            found=count,
            seed=seed,
            note=note,
        )

    rounds = [record(0, order, {}, "initial random set without targets")]
    r = 0
    while not all(v is not None for v in reached.values()):
        pool = np.flatnonzero(~measured)
        room = limit - int(measured.sum())
        if len(pool) == 0 or room <= 0:
            break
        r += 1
        best = float(y[measured].max())
        metrics: dict[str, float | None] = {"best_measured": best}
        if cold_start(y[measured], FAST_LOG10):
            mu, values, note = np.zeros(len(pool)), prior[pool], "cold start: ranked by the prior"
        else:
            mu, sd = fit_predict(
                X[measured],
                y[measured],
                X[pool],
                model=model,
                n_estimators=n_estimators,
                seed=seed * 1000 + r,
            )
            values = score(acquisition, mu, sd, best, rng, kappa=kappa)
            note = ""
            if weighted and acquisition in PRIOR_WEIGHTED:
                values = weight_by_prior(acquisition, values, prior[pool])
                note = "scores weighted by the prior"
        pool_groups = None if groups is None else [groups[i] for i in pool]
        chosen = select_diverse(ranking(values, mu), pool_groups, min(int(batch), room))
        picked = [int(pool[i]) for i in chosen]
        measured[picked] = True
        order.extend(picked)
        rounds.append(record(r, picked, metrics, note))
    return SimulationResult(
        acquisition=acquisition,
        seed=int(seed),
        init_size=int(init_size),
        order=tuple(order),
        rounds=tuple(rounds),
        reached=reached,
    )
