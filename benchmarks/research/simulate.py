"""Simulated campaigns: sequential learning on a labelled table whose labels stay hidden
until a row is "measured" (Ling et al., IMMI 6, 207 (2017)).

A campaign starts from a small random set of measured rows that holds no target, then
each round fits a small random forest on the measured rows, scores the rest with an
acquisition function (the spread of the trees is the ``sd``), measures a diverse batch and
records how many measurements it took to find each target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from miscreen.suggest.acquisition import KAPPA, MODEL_FREE, get_acquisition, ranking, score
from miscreen.suggest.campaign import CampaignRound
from miscreen.suggest.prior import PRIOR_WEIGHTED, cold_start, weight_by_prior
from miscreen.suggest.selection import select_diverse
from miscreen.train.estimators import make_regressor, per_tree_predictions

FAST_LOG10 = -3.0  # a fast Li-ion conductor: sigma >= 1 mS/cm at room temperature
MODELS = ("random_forest", "extra_trees")


@dataclass(frozen=True)
class Target:
    """What a campaign looks for: rows in ``mask``; reached once ``needed`` are measured."""

    name: str
    mask: np.ndarray
    needed: int = 1


@dataclass(frozen=True)
class SimulationResult:
    """One simulated campaign.

    ``order`` holds row positions in the order they were measured (the initial set first);
    ``reached`` maps each target to the number of measurements (initial set included) after
    the round that reached it, or ``None`` when the campaign ended first.
    """

    acquisition: str
    seed: int
    init_size: int
    order: tuple[int, ...]
    rounds: tuple[CampaignRound, ...]
    reached: dict[str, int | None]

    def curve(self) -> pd.DataFrame:
        """One row per round: measurements so far and targets found so far."""
        rows = [{"round": r.round, "n_measured": r.n_measured, **r.found} for r in self.rounds]
        return pd.DataFrame(rows)


def default_targets(y: np.ndarray, fast_threshold: float = FAST_LOG10) -> list[Target]:
    """The first fast conductor, and 5 of the top 5 % of the labels."""
    y = np.asarray(y, dtype=float)
    top = y >= np.quantile(y, 0.95)
    return [
        Target("first_fast", y >= fast_threshold, 1),
        Target("top5pct_5", top, min(5, int(top.sum()))),
    ]


def fit_predict(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_pool: np.ndarray,
    *,
    model: str = "random_forest",
    n_estimators: int = 50,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(mean, sd) over the trees of a small single-threaded forest fitted on the train rows."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    pipe = make_regressor(model, n_estimators, seed)  # type: ignore[arg-type]
    pipe.fit(X_train, y_train)
    per_tree = per_tree_predictions(pipe[-1], pipe[:-1].transform(X_pool))
    return per_tree.mean(axis=0), per_tree.std(axis=0)


def simulate_campaign(
    X: np.ndarray,
    y: np.ndarray,
    groups: Sequence[object] | None = None,
    acquisition: str = "mli",
    seed: int = 0,
    init_size: int = 10,
    batch: int = 5,
    *,
    targets: Sequence[Target] | None = None,
    fast_threshold: float = FAST_LOG10,
    max_measured: int | None = None,
    stop_when_found: bool = True,
    model: str = "random_forest",
    n_estimators: int = 50,
    kappa: float = KAPPA,
    ids: Sequence[object] | None = None,
    prior: np.ndarray | None = None,
    weighted: bool = False,
) -> SimulationResult:
    """Run one campaign on (``X``, ``y``) with the labels revealed batch by batch.

    ``groups`` (e.g. chemical systems) keep each batch to one row per group; ``None`` turns
    diversity off. The initial ``init_size`` rows are drawn (by ``seed``) from rows below
    ``fast_threshold`` that belong to no target. The campaign stops once every target is
    reached (``stop_when_found``), after ``max_measured`` measurements, or when the pool
    is empty.
    With ``prior``, the pool is ranked by it until a row reaches ``fast_threshold`` (the cold
    start of ``miscreen suggest``); with ``weighted`` too, ``mli`` and ``ei`` scores are then
    multiplied by it (:func:`miscreen.suggest.prior.weight_by_prior`), as ``miscreen suggest``
    does.
    """
    get_acquisition(acquisition)  # fail early on an unknown name
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n = len(y)
    if X.ndim != 2 or X.shape[0] != n:
        raise ValueError(f"X must be 2-d with one row per label, got {X.shape} for {n} labels")
    if not np.isfinite(y).all():
        raise ValueError("y holds NaN or infinite labels; map censored values before")
    if groups is not None and len(groups) != n:
        raise ValueError(f"groups has {len(groups)} entries for {n} rows")
    if int(batch) < 1 or int(init_size) < 1:
        raise ValueError("batch and init_size must be >= 1")
    targets = list(targets) if targets is not None else default_targets(y, fast_threshold)
    for t in targets:
        if len(t.mask) != n:
            raise ValueError(f"target {t.name!r} mask has {len(t.mask)} entries for {n} rows")
    if prior is not None:
        prior = np.asarray(prior, dtype=float)
        if prior.shape != (n,) or not np.isfinite(prior).all():
            raise ValueError(f"prior must hold one finite score per row, got shape {prior.shape}")
    names = [str(i) for i in ids] if ids is not None else [str(i) for i in range(n)]
    limit = n if max_measured is None else min(int(max_measured), n)

    rng = np.random.default_rng(seed)
    in_target = np.zeros(n, dtype=bool)
    for t in targets:
        in_target |= np.asarray(t.mask, dtype=bool)
    eligible = np.flatnonzero((y < fast_threshold) & ~in_target)
    if len(eligible) < init_size:
        raise ValueError(
            f"only {len(eligible)} rows hold no target and lie below {fast_threshold}; "
            f"init_size={init_size} is too many"
        )
    order = [int(i) for i in rng.choice(eligible, size=int(init_size), replace=False)]
    measured = np.zeros(n, dtype=bool)
    measured[order] = True
    masks = [np.asarray(t.mask, dtype=bool) for t in targets]
    reached: dict[str, int | None] = {t.name: None for t in targets}

    def found() -> dict[str, int]:
        return {t.name: int((m & measured).sum()) for t, m in zip(targets, masks, strict=True)}

    def note_reached(count: dict[str, int]) -> None:
        for t in targets:
            if reached[t.name] is None and count[t.name] >= t.needed:
                reached[t.name] = int(measured.sum())

    count = found()
    note_reached(count)
    rounds = [
        CampaignRound(
            round=0,
            acquisition=acquisition,
            suggested=tuple(names[i] for i in order),
            measured={names[i]: float(y[i]) for i in order},
            n_measured=len(order),
            found=count,
            seed=seed,
            note="initial random set without targets",
        )
    ]
    r = 0
    while True:
        done = stop_when_found and all(v is not None for v in reached.values())
        pool = np.flatnonzero(~measured)
        room = limit - int(measured.sum())
        if done or len(pool) == 0 or room <= 0:
            break
        r += 1
        best = float(y[measured].max())
        metrics: dict[str, float | None] = {"best_measured": best}
        guided = prior is not None and cold_start(y[measured], fast_threshold)
        if acquisition in MODEL_FREE or guided:
            mu = np.zeros(len(pool))
            sd = np.zeros(len(pool))
        else:
            mu, sd = fit_predict(
                X[measured],
                y[measured],
                X[pool],
                model=model,
                n_estimators=n_estimators,
                seed=seed * 1000 + r,
            )
            metrics["mae_unmeasured"] = float(np.abs(mu - y[pool]).mean())
            metrics["mean_sd_unmeasured"] = float(sd.mean())
            if len(pool) > 2 and np.ptp(mu) > 0 and np.ptp(y[pool]) > 0:
                metrics["spearman_unmeasured"] = float(spearmanr(mu, y[pool]).statistic)
        weigh = weighted and prior is not None and acquisition in PRIOR_WEIGHTED
        if guided:
            values = prior[pool]  # type: ignore[index]
        else:
            values = score(acquisition, mu, sd, best, rng, kappa=kappa)
            if weigh:
                values = weight_by_prior(acquisition, values, prior[pool])  # type: ignore[index]
        pool_groups = None if groups is None else [groups[i] for i in pool]
        picked = [
            int(pool[i])
            for i in select_diverse(ranking(values, mu), pool_groups, min(int(batch), room))
        ]
        measured[picked] = True
        order.extend(picked)
        count = found()
        note_reached(count)
        rounds.append(
            CampaignRound(
                round=r,
                acquisition=acquisition,
                suggested=tuple(names[i] for i in picked),
                measured={names[i]: float(y[i]) for i in picked},
                metrics=metrics,
                n_measured=int(measured.sum()),
                found=count,
                seed=seed,
                note="cold start: ranked by the prior"
                if guided
                else ("scores weighted by the prior" if weigh else ""),
            )
        )
    return SimulationResult(
        acquisition=acquisition,
        seed=int(seed),
        init_size=int(init_size),
        order=tuple(order),
        rounds=tuple(rounds),
        reached=reached,
    )
