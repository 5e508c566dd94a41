"""Variants of the simulated OBELiX campaigns of ``benchmarks/sequential.py`` (issue 23):
where do the measurements go between the first fast conductor and the fifth top-5 % row,
and does a principled change to the acquisition, the spread or the features shorten it?

Every variant runs the same campaigns as ``sequential.py`` (the same OBELiX rows and
features, the same initial 10 rows per seed, batches of 5, at most one per chemical system
unless the variant says otherwise, the cold start ranked by the label-free physics prior)
and is summarised like it: the median number of measurements to find 5 of the top 5 %
over the seeds, and the ratio of random's median to it with a bootstrap interval. The
loop here gives the same campaigns as :func:`benchmarks.research.simulate.simulate_campaign`
for the ``base`` variant (same per-seed counts: 57.5 median on all rows), then lets a
variant replace the scores, the spread, the model or the features. After each variant it
tallies where the measurements went between the first fast row and the fifth top row, by
OBELiX family (read for the tally only).

Run ``.venv/bin/python benchmarks/research/sequential_variants.py --half A base ts ...``
(``--half A`` chooses, ``--half B`` checks on the disjoint rows, ``--half all`` reports;
``--seeds 40`` for steadier means); ``--trace SEED`` prints every batch of one campaign.
Writes nothing unless ``--out``.

Findings (2026-12-05; mean measurements to 5 of the top 5 % over 40 seeds, all rows /
half A / half B; random's median 87.5 / 102.5 / 95):

- ``base`` (the cold-start method): 61.6 / 72.0 / 52.6. Between the first fast row
  (always at 15) and the fifth top row (tally over 20 seeds, all rows), 33 % of the
  picks are argyrodites (fast, but only 2 of them in the top 5 %), 38 % oxides and other
  hard-anion rows, 17 % LGPS and thio-LISICON (86 of the 127 top rows found); the first
  LGPS-family pick comes at 37 measurements on average. The forest (15-40 rows, censored
  rows at -10 among them) predicts the LGPS family at about -4.2 with a tree spread of
  about 2 decades, like the garnets, so ``mli`` is close to a ranking by a poor mean; no
  tree can predict above the best measured value, so ``mli`` lives on the Gaussian tail
  of that spread.
- ``mli_x_prior`` (adopted: ``mli`` times the prior): 53.2 / 55.9 / 40.4; oxides and
  other hard-anion rows fall to 13 % of that phase, the first LGPS-family pick comes at
  29. ``ei_x_prior`` 58.8 / 57.2 / 47.1 against ``ei`` 78.0 / 73.4 / 67.5;
  ``mli_blend`` (rank sum) 53.2 / 53.9 / 39.5; the argyrodites now take half the phase.
- Not adopted (no gain on every set, or noise): per-system mean and spread for rows whose
  chemical system is measured (``sysmodel_x_prior`` 50.1 / 52.6 / 37.2, about 3 fewer on
  each, a bigger change to the product for little), a per-system decay (41.9 / 58.0 /
  39.6: worse on A, where the top rows share few systems), P(beat the 2nd/3rd/5th best)
  (51-53 / 50-54 / 40-42), the prior with unknown components at 0.5 (44.8 / 53.5 / 42.9),
  a forest trying all features at every split (53.8 / 51.6 / 40.2), rank-transformed
  labels, median and IQR of the trees, extra trees, batch Thompson sampling, no
  diversity, CHGNet element embeddings as features, a Gaussian process on element
  fractions, scaled or raw (20 seeds on A: medians 55-170). Labels below -6 seen at -6
  by the campaign's forest (``clip``: 50.9 / 60.2 / 42.6 alone, 51.1 / 51.0 / 40.8 with
  the weighting) and that plus ``sysmodel`` (``clip_sysmodel_x_prior``: 48.6 / 48.9 /
  37.4) gain a few measurements more each, still about 1.8x on all rows: stacked tweaks
  chosen on these same campaigns, not adopted.

None comes near the 3x target (a median of about 28, i.e. 5 top rows within about 13
measurements of the first fast one): the LGPS family, where most of the top 5 % lie,
looks no better than the argyrodites to a label-free prior or to a model that has seen
only argyrodites.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
from scipy.stats import norm
from threadpoolctl import threadpool_limits

from benchmarks.research.simulate import FAST_LOG10, Target, simulate_campaign
from benchmarks.sequential import acceleration, half_rows, load
from miscreen.suggest.acquisition import ranking, score
from miscreen.suggest.prior import (
    COMPONENTS,
    LI_FRACTION,
    POLARIZABILITY,
    cold_start,
    prior_score,
)
from miscreen.suggest.selection import select_diverse
from miscreen.train.estimators import make_regressor, per_tree_predictions

REPO = Path(__file__).resolve().parents[2]
INIT, BATCH, TREES, CAP = 10, 5, 50, 200
CLIP_LOG10 = -6.0  # "clip_" models see every label below this at it: all very poor


@dataclass
class State:
    """What a variant may look at in one round (labels of measured rows only)."""

    pool: np.ndarray  # row positions not measured yet
    measured: np.ndarray  # bool mask over all rows
    y_measured: np.ndarray  # labels of the measured rows, in row order
    per_tree: np.ndarray  # (trees, pool) predictions
    mu: np.ndarray
    sd: np.ndarray
    best: float
    prior: np.ndarray  # prior score of the pool rows
    rng: np.random.Generator
    round: int
    sys_measured: np.ndarray  # per pool row: measured rows of its chemical system
    sys_values: list[np.ndarray]  # per pool row: the labels measured in its system


Scorer = Callable[[State], np.ndarray]


@dataclass(frozen=True)
class Variant:
    """A campaign recipe: the scores, the features, diversity and the cold start."""

    scorer: Scorer
    features: str = "prior"  # "prior": composition + prior components; "plain"; "small"
    diversity: bool = True
    batch_picker: str = "rank"  # "rank": top of the scores; "ts": one tree per pick
    fit: str = "random_forest"
    prior: str = "score"  # "score": prior_score; "half": an unknown component counts 0.5


def fit_trees(
    X_train: np.ndarray, y_train: np.ndarray, X_pool: np.ndarray, model: str, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(per-tree predictions or None, mean, sd, labels as the model saw them)."""
    if model == "gp":
        mu, sd = fit_gp(X_train, y_train, X_pool, seed)
        return mu[None, :], mu, sd, y_train
    if model == "gp_raw":
        mu, sd = fit_gp_raw(X_train, y_train, X_pool, seed)
        return mu[None, :], mu, sd, y_train
    if model.startswith("median_"):
        per_tree, _, _, seen = fit_trees(
            X_train, y_train, X_pool, model.removeprefix("median_"), seed
        )
        q25, q50, q75 = np.percentile(per_tree, [25, 50, 75], axis=0)
        return per_tree, q50, (q75 - q25) / 1.349, seen
    if model in ("rf_all_features", "rf_sqrt"):
        from sklearn.ensemble import RandomForestRegressor

        rf = RandomForestRegressor(
            TREES, max_features=1.0 if model == "rf_all_features" else "sqrt", random_state=seed
        )
        rf.fit(np.nan_to_num(X_train, nan=-1.0), y_train)
        per_tree = per_tree_predictions(rf, np.nan_to_num(X_pool, nan=-1.0))
        return per_tree, per_tree.mean(axis=0), per_tree.std(axis=0), y_train
    if model.startswith("clip_"):
        y_train = np.maximum(y_train, CLIP_LOG10)
        model = model.removeprefix("clip_")
    if model.startswith("rank_"):
        y_train = normal_scores(y_train)
        model = model.removeprefix("rank_")
    pipe = make_regressor(model, TREES, seed)  # type: ignore[arg-type]
    pipe.fit(X_train, y_train)
    per_tree = per_tree_predictions(pipe[-1], pipe[:-1].transform(X_pool))
    return per_tree, per_tree.mean(axis=0), per_tree.std(axis=0), y_train


def normal_scores(y: np.ndarray) -> np.ndarray:
    """Labels replaced by the normal quantiles of their ranks (ties share a rank): the
    order is kept, the censored and very poor rows no longer dominate the squared error."""
    from scipy.stats import rankdata

    return norm.ppf((rankdata(y) - 0.5) / len(y))


def fit_gp_raw(
    X_train: np.ndarray, y_train: np.ndarray, X_pool: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """A Gaussian process (RBF + noise, hyperparameters by marginal likelihood) on raw
    element fractions (no scaling: a rare element must not dominate the distance)."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    kernel = ConstantKernel(1.0) * RBF(0.2, (0.02, 5.0)) + WhiteKernel(0.1, (1e-3, 10.0))
    gp = GaussianProcessRegressor(kernel, normalize_y=True, random_state=seed)
    gp.fit(X_train, y_train)
    return gp.predict(X_pool, return_std=True)


def fit_gp(
    X_train: np.ndarray, y_train: np.ndarray, X_pool: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """A Gaussian process (Matern 5/2 + noise, hyperparameters by marginal likelihood) on
    features scaled over the train rows."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    centre = X_train.mean(axis=0)
    scale = X_train.std(axis=0)
    scale[scale == 0] = 1.0
    kernel = ConstantKernel(1.0) * Matern(length_scale=3.0, nu=2.5) + WhiteKernel(0.1)
    gp = GaussianProcessRegressor(kernel, normalize_y=True, random_state=seed)
    gp.fit((X_train - centre) / scale, y_train)
    mu, sd = gp.predict((X_pool - centre) / scale, return_std=True)
    return mu, sd


def campaign(
    X: np.ndarray,
    y: np.ndarray,
    groups: list[str],
    prior: np.ndarray,
    targets: list[Target],
    seed: int,
    variant: Variant,
    trace: Callable[[int, list[int], State | None], None] | None = None,
) -> dict[str, int | None]:
    """One campaign; the measurements after which each target was reached."""
    n = len(y)
    rng = np.random.default_rng(seed)
    in_target = np.zeros(n, dtype=bool)
    for t in targets:
        in_target |= t.mask
    eligible = np.flatnonzero((y < FAST_LOG10) & ~in_target)
    order = [int(i) for i in rng.choice(eligible, size=INIT, replace=False)]
    measured = np.zeros(n, dtype=bool)
    measured[order] = True
    reached: dict[str, int | None] = {t.name: None for t in targets}
    r = 0
    while measured.sum() < CAP and not all(v is not None for v in reached.values()):
        r += 1
        pool = np.flatnonzero(~measured)
        room = min(BATCH, CAP - int(measured.sum()))
        pool_groups = [groups[i] for i in pool] if variant.diversity else None
        state = None
        if cold_start(y[measured], FAST_LOG10):
            values = prior[pool]
            picked_local = select_diverse(ranking(values, np.zeros(len(pool))), pool_groups, room)
        else:
            counts: dict[str, int] = {}
            values: dict[str, list[float]] = {}
            for i in np.flatnonzero(measured):
                counts[groups[i]] = counts.get(groups[i], 0) + 1
                values.setdefault(groups[i], []).append(float(y[i]))
            per_tree, mu, sd, seen = fit_trees(
                X[measured], y[measured], X[pool], variant.fit, seed * 1000 + r
            )
            state = State(
                pool=pool,
                measured=measured.copy(),
                y_measured=seen,
                per_tree=per_tree,
                mu=mu,
                sd=sd,
                best=float(seen.max()),
                prior=prior[pool],
                rng=rng,
                round=r,
                sys_measured=np.array([counts.get(groups[i], 0) for i in pool]),
                sys_values=[np.asarray(values.get(groups[i], [])) for i in pool],
            )
            if variant.batch_picker == "ts":
                picked_local = thompson_batch(state, pool_groups, room)
            else:
                values = variant.scorer(state)
                picked_local = select_diverse(ranking(values, state.mu), pool_groups, room)
        picked = [int(pool[i]) for i in picked_local]
        measured[picked] = True
        if trace is not None:
            trace(r, picked, state)
        for t in targets:
            if reached[t.name] is None and (t.mask & measured).sum() >= t.needed:
                reached[t.name] = int(measured.sum())
    return reached


def thompson_batch(state: State, groups: list[str] | None, k: int) -> list[int]:
    """Batch Thompson sampling on the forest: each pick is the best row of one random tree
    (a draw from the forest's spread), one per chemical system."""
    picked: list[int] = []
    seen: set[str] = set()
    trees = state.rng.permutation(state.per_tree.shape[0])
    for t in trees:
        for i in np.argsort(-state.per_tree[t], kind="stable"):
            i = int(i)
            if i in picked or (groups is not None and groups[i] in seen):
                continue
            picked.append(i)
            if groups is not None:
                seen.add(groups[i])
            break
        if len(picked) == k:
            break
    return picked


# --- scorers -------------------------------------------------------------------------


def s_mli(st: State) -> np.ndarray:
    return score("mli", st.mu, st.sd, st.best, st.rng)


def s_mei(st: State) -> np.ndarray:
    return st.mu.copy()


def s_ei(st: State) -> np.ndarray:
    return score("ei", st.mu, st.sd, st.best, st.rng)


def tree_prob(st: State, threshold: float) -> np.ndarray:
    """Share of trees predicting above ``threshold`` (plus half the Gaussian mli as a tie
    break, so rows no tree puts above still differ)."""
    share = (st.per_tree > threshold).mean(axis=0)
    return share + 1e-3 * score("mli", st.mu, st.sd, threshold, st.rng)


def s_tree_mli(st: State) -> np.ndarray:
    return tree_prob(st, st.best)


def margin(delta: float) -> Scorer:
    def f(st: State) -> np.ndarray:
        return score("mli", st.mu, st.sd, st.best + delta, st.rng)

    return f


def noise_sd(scale: float) -> Scorer:
    """mli with sd = sqrt(tree variance + (scale * spread of the measured labels)^2)."""

    def f(st: State) -> np.ndarray:
        s = scale * float(np.std(st.y_measured))
        return score("mli", st.mu, np.sqrt(st.sd**2 + s**2), st.best, st.rng)

    return f


def mli_times_prior(st: State) -> np.ndarray:
    return score("mli", st.mu, st.sd, st.best, st.rng) * st.prior


def times_prior(base: Scorer, power: float = 1.0) -> Scorer:
    def f(st: State) -> np.ndarray:
        return base(st) * st.prior**power

    return f


def rank_blend(base: Scorer) -> Scorer:
    """Mean of the percentile ranks of the acquisition and of the prior."""

    def f(st: State) -> np.ndarray:
        from scipy.stats import rankdata

        return rankdata(base(st)) + rankdata(st.prior)

    return f


def system_decay(base: Scorer) -> Scorer:
    """Scores divided by 1 + the measured rows of the candidate's chemical system."""

    def f(st: State) -> np.ndarray:
        return base(st) / (1.0 + st.sys_measured)

    return f


def system_cap(base: Scorer, m: int) -> Scorer:
    def f(st: State) -> np.ndarray:
        v = base(st)
        return np.where(st.sys_measured >= m, v - 10.0, v)

    return f


def system_model(base: str, pooled: bool, min_n: int = 2, floor: float = 0.05) -> Scorer:
    """The acquisition ``base`` on a mean and sd that, for a row whose chemical system holds
    ``min_n`` or more measured rows, are that system's measured mean and spread (sample sd,
    or the spread pooled over all such systems, times sqrt(1 + 1/n)); the forest's
    elsewhere."""

    def f(st: State) -> np.ndarray:
        mu, sd = st.mu.copy(), st.sd.copy()
        groups = [v for v in st.sys_values if len(v) >= 2]
        if pooled and groups:
            dev = sum(float(((v - v.mean()) ** 2).sum()) for v in groups)
            dof = sum(len(v) - 1 for v in groups)
            pooled_sd = np.sqrt(dev / dof)
        for i, v in enumerate(st.sys_values):
            if len(v) >= min_n:
                spread = pooled_sd if pooled else float(np.std(v, ddof=1))
                mu[i] = v.mean()
                sd[i] = max(spread, floor) * np.sqrt(1 + 1 / len(v))
        return score(base, mu, sd, st.best, st.rng)

    return f


def kth_best(k: int, base: str = "mli") -> Scorer:
    """``base`` against the k-th best measured value instead of the best (the campaign
    wants several top rows, not one record)."""

    def f(st: State) -> np.ndarray:
        level = float(np.sort(st.y_measured)[::-1][min(k, len(st.y_measured)) - 1])
        return score(base, st.mu, st.sd, level, st.rng)

    return f


VARIANTS: dict[str, Variant] = {
    "base": Variant(s_mli),
    "nodiv": Variant(s_mli, diversity=False),
    "mei": Variant(s_mei),
    "ei": Variant(s_ei),
    "ts": Variant(s_mli, batch_picker="ts"),
    "ts_nodiv": Variant(s_mli, batch_picker="ts", diversity=False),
    "tree_mli": Variant(s_tree_mli),
    "margin05": Variant(margin(0.5)),
    "noise05": Variant(noise_sd(0.5)),
    "mli_x_prior": Variant(mli_times_prior),
    "et": Variant(s_mli, fit="extra_trees"),
    "rank": Variant(s_mli, fit="rank_random_forest"),
    "rank_ei": Variant(s_ei, fit="rank_random_forest"),
    "gp_frac": Variant(s_mli, features="frac", fit="gp"),
    "gp_frac_ei": Variant(s_ei, features="frac", fit="gp"),
    "rf_frac": Variant(s_mli, features="frac"),
    "gp_raw_x_prior": Variant(mli_times_prior, features="frac_raw", fit="gp_raw"),
    "gp_raw": Variant(s_mli, features="frac_raw", fit="gp_raw"),
    "ei_x_prior": Variant(times_prior(s_ei)),
    "mei_x_prior": Variant(times_prior(lambda st: st.mu - st.mu.min())),
    "mli_x_prior2": Variant(times_prior(s_mli, 2.0)),
    "mli_x_prior_nodiv": Variant(mli_times_prior, diversity=False),
    "mli_blend": Variant(rank_blend(s_mli)),
    "median": Variant(s_mli, fit="median_random_forest"),
    "median_x_prior": Variant(mli_times_prior, fit="median_random_forest"),
    "rf_all": Variant(s_mli, fit="rf_all_features"),
    "rf_all_x_prior": Variant(mli_times_prior, fit="rf_all_features"),
    "rf_sqrt_x_prior": Variant(mli_times_prior, fit="rf_sqrt"),
    "chgnet": Variant(s_mli, features="chgnet"),
    "chgnet_x_prior": Variant(mli_times_prior, features="chgnet"),
    "chgnet_magpie_x_prior": Variant(mli_times_prior, features="chgnet_prior"),
    "sys_decay": Variant(system_decay(s_mli)),
    "sys_decay_x_prior": Variant(system_decay(mli_times_prior)),
    "sys_cap2_x_prior": Variant(system_cap(mli_times_prior, 2)),
    "sys_cap3_x_prior": Variant(system_cap(mli_times_prior, 3)),
    "sysmodel": Variant(system_model("mli", False)),
    "sysmodel_x_prior": Variant(times_prior(system_model("mli", False))),
    "sysmodel3_x_prior": Variant(times_prior(system_model("mli", False, 3))),
    "sysmodel_pooled_x_prior": Variant(times_prior(system_model("mli", True))),
    "sysmodel_ei_x_prior": Variant(times_prior(system_model("ei", False))),
    "sysmodel_decay_x_prior": Variant(system_decay(times_prior(system_model("mli", False)))),
    "mli2_x_prior": Variant(times_prior(kth_best(2))),
    "mli3_x_prior": Variant(times_prior(kth_best(3))),
    "mli5_x_prior": Variant(times_prior(kth_best(5))),
    "mli5": Variant(kth_best(5)),
    "half_x_prior": Variant(mli_times_prior, prior="half"),
    "half_base": Variant(s_mli, prior="half"),
    "clip_x_prior": Variant(mli_times_prior, fit="clip_random_forest"),
    "clip": Variant(s_mli, fit="clip_random_forest"),
    "clip_sysmodel_x_prior": Variant(
        times_prior(system_model("mli", False)), fit="clip_random_forest"
    ),
    "rank_x_prior": Variant(mli_times_prior, fit="rank_random_forest"),
    "rank_ei_x_prior": Variant(times_prior(s_ei), fit="rank_random_forest"),
}


def prior_unknown_half(components) -> np.ndarray:
    """The prior with an unknown component (no anion, no barrier) at the middle rank 0.5
    instead of left out of the mean."""
    from scipy.stats import rankdata

    from miscreen.suggest.prior import ORIENTATION

    ranks = []
    for name in COMPONENTS:
        values = components[name].to_numpy(dtype=float) * ORIENTATION[name]
        known = np.isfinite(values)
        r = np.full(len(values), 0.5)
        r[known] = (rankdata(values[known]) - 1) / max(known.sum() - 1, 1)
        ranks.append(r)
    return np.mean(ranks, axis=0)


def feature_names(preset: str) -> tuple[list[str], list[str], list[str]]:
    """Column names of the featurize preset on OBELiX, the compositions and the OBELiX
    families of the rows (for the ``--where`` tally only), in :func:`load`'s order."""
    from miscreen import schema as S
    from miscreen.featurize import featurize_records
    from miscreen.fetch.obelix import load_obelix

    records, _ = load_obelix("all", with_structures=False)
    feats = featurize_records(records, preset)[0]
    table = records.set_index(S.ID).loc[feats.index]
    families = table["family"].fillna("unknown").astype(str).tolist()
    return list(feats.columns), table[S.COMPOSITION].astype(str).tolist(), families


def chgnet_features(compositions: list[str]) -> np.ndarray:
    """Atom-fraction-weighted mean and spread of CHGNet 0.3.0's element embedding."""
    from pymatgen.core import Composition

    from benchmarks.research.embeddings import chgnet_table, weighted_mean_std

    table = chgnet_table()
    return np.array(
        [np.concatenate(weighted_mean_std(table, Composition(c))) for c in compositions]
    )


def run(
    names: list[str], half: str, seeds: int, trace_seed: int | None = None
) -> dict[str, object]:
    os.environ.setdefault("MISCREEN_MIRROR", str((REPO.parent / "shared" / "data").resolve()))
    X, y, systems, components, _ = load("bound", "composition")
    rows = half_rows(len(y), half)
    X, y = X[rows], y[rows]
    components = components.iloc[rows].reset_index(drop=True)
    systems = [systems[i] for i in rows]
    priors = {"score": prior_score(components), "half": prior_unknown_half(components)}
    cols, compositions, families = feature_names("composition")
    compositions = [compositions[i] for i in rows]
    families = [families[i] for i in rows]
    frac = [i for i, c in enumerate(cols) if c.removeprefix("comp:").isalpha()]
    soft = components[[POLARIZABILITY, LI_FRACTION]].to_numpy(dtype=float)
    soft = np.nan_to_num(soft, nan=float(np.nanmin(soft[:, 0])))  # no anion: the hardest
    feats = {
        "plain": X,
        "prior": np.hstack([X, components[list(COMPONENTS)].to_numpy(dtype=float)]),
        "frac": np.hstack([X[:, frac], soft]),
        "frac_raw": X[:, frac],
    }
    if any(VARIANTS[n].features.startswith("chgnet") for n in names):
        emb = chgnet_features(compositions)
        feats["chgnet"] = np.hstack([emb, components[list(COMPONENTS)].to_numpy(dtype=float)])
        feats["chgnet_prior"] = np.hstack([feats["prior"], emb])
    top = y >= np.quantile(y, 0.95)
    targets = [Target("first_fast", y >= FAST_LOG10, 1), Target("top5pct_5", top, 5)]
    random = [
        simulate_campaign(X, y, systems, "random", seed=s, targets=targets).reached["top5pct_5"]
        for s in range(seeds)
    ]
    out: dict[str, object] = {"half": half, "random_median": float(np.median(random))}
    print(f"half {half}: {len(y)} rows, random median {np.median(random)}", flush=True)
    rng = np.random.default_rng(0)
    for name in names:
        v = VARIANTS[name]
        t0 = time.perf_counter()
        Xv = feats[v.features]
        got = []
        tally = Tally(y, top, families, components[POLARIZABILITY].to_numpy(dtype=float))
        for s in range(seeds):
            tr = make_trace(y, top, systems) if trace_seed == s else tally.start()
            if trace_seed is not None and trace_seed != s:
                continue
            res = campaign(Xv, y, systems, priors[v.prior], targets, s, v, tr)
            got.append(CAP + 1 if res["top5pct_5"] is None else res["top5pct_5"])
        if trace_seed is not None:
            print(name, got)
            continue
        out[f"{name}_where"] = tally.report(name)
        acc = acceleration(np.asarray(random, float), np.asarray(got, float), 0, rng)
        out[name] = {"median": float(np.median(got)), "per_seed": got, "acceleration": acc}
        print(
            f"{name:>14}: median {np.median(got):6.1f}  mean {np.mean(got):6.1f}  "
            f"x{acc['ratio_of_medians']:.2f} [{acc['bootstrap_5']:.2f}, "
            f"{acc['bootstrap_95']:.2f}]  {got}  ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    return out


class Tally:
    """Where the measurements go between the first fast conductor and the fifth top-5 %
    row: by OBELiX family group (read for this tally only; no campaign sees it)."""

    def __init__(self, y, top, families, polarizability) -> None:
        self.y, self.top = y, top
        self.groups = [family_group(f, p) for f, p in zip(families, polarizability, strict=True)]
        self.counts: dict[str, int] = {}
        self.tops: dict[str, int] = {}
        self.phase: list[int] = []
        self.first_lgps: list[int] = []

    def start(self):
        state = {"fast": False, "found": 0, "n": 10, "spent": 0, "lgps": None}

        def trace(r: int, picked: list[int], st: State | None) -> None:
            for i in picked:
                state["n"] += 1
                if state["fast"] and state["found"] < 5:
                    g = self.groups[i]
                    self.counts[g] = self.counts.get(g, 0) + 1
                    self.tops[g] = self.tops.get(g, 0) + int(self.top[i])
                    state["spent"] += 1
                if state["lgps"] is None and self.groups[i] == "LGPS, thio-LISICON":
                    state["lgps"] = state["n"]
            state["found"] += int(self.top[picked].sum())
            if state["found"] >= 5 and state["spent"] >= 0:
                self.phase.append(state["spent"])
                state["spent"] = -(10**6)  # counted once
            state["fast"] = state["fast"] or bool((self.y[picked] >= FAST_LOG10).any())
            if state["lgps"] is not None and state["found"] >= 5 and state["spent"] < -1:
                self.first_lgps.append(state["lgps"])
                state["spent"] = -(10**7)

        return trace

    def report(self, name: str) -> dict[str, object]:
        total = sum(self.counts.values())
        shares = {g: self.counts[g] / total for g in sorted(self.counts)} if total else {}
        print(f"  {name}: measurements from the first fast row to the 5th top row, per seed:")
        print(f"    mean {np.mean(self.phase):.1f}; by family group (share, top-5 % found):")
        for g, share in sorted(shares.items(), key=lambda kv: -kv[1]):
            print(f"      {g:<22} {share:5.1%}  {self.tops.get(g, 0)} top")
        if self.first_lgps:
            print(f"    first LGPS/thio-LISICON pick: mean {np.mean(self.first_lgps):.1f}")
        return {
            "phase_mean": float(np.mean(self.phase)) if self.phase else None,
            "shares": shares,
            "tops": dict(self.tops),
            "first_lgps_mean": float(np.mean(self.first_lgps)) if self.first_lgps else None,
        }


def family_group(family: str, polarizability: float) -> str:
    """A coarse family for the tally: argyrodites, LGPS and thio-LISICON, other
    sulfides/selenides, oxides, halides and the rest."""
    if family == "argyrodites":
        return "argyrodites"
    if family in ("LGPS", "thio-LISICON"):
        return "LGPS, thio-LISICON"
    if family in ("garnet", "NASICON", "perovskite", "LISICON", "oxides"):
        return "oxides (garnet, NASICON, ...)"
    if np.isfinite(polarizability) and polarizability >= 2.5:
        return "other soft-anion"
    if np.isfinite(polarizability) and polarizability >= 1.5:
        return "other halides/oxyhalides"
    return "other (oxides, nitrides, ...)"


def make_trace(y: np.ndarray, top: np.ndarray, systems: list[str]):
    def trace(r: int, picked: list[int], st: State | None) -> None:
        cells = [f"{systems[i]}:{y[i]:.2f}{'*' if top[i] else ''}" for i in picked]
        print(f"  r{r:<2} " + " | ".join(cells))

    return trace


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variants", nargs="+", choices=sorted(VARIANTS))
    ap.add_argument("--half", choices=("all", "A", "B"), default="A")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--trace", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    out = run(args.variants, args.half, args.seeds, args.trace)
    if args.out:
        args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    with threadpool_limits(1):
        main()
