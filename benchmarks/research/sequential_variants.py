"""Variants of the simulated OBELiX campaigns of ``benchmarks/sequential.py`` (issue 23):
where do the measurements go between the first fast conductor and the fifth top-5 % row,
and does a principled change to the acquisition, the spread or the features shorten it?

Every variant runs the same campaigns as ``sequential.py`` (the same OBELiX rows and
features, the same initial 10 rows per seed, batches of 5, at most one per chemical system
unless the variant says otherwise, the cold start ranked by the label-free physics prior)
and is summarised like it: the median number of measurements to find 5 of the top 5 %
over the seeds, and the ratio of random's median to it with a bootstrap interval. The
loop here reproduces :func:`benchmarks.research.simulate.simulate_campaign` exactly for
the ``base`` variant (checked by ``--check``), then lets a variant replace the scores, the
spread or the features.

Run ``.venv/bin/python benchmarks/research/sequential_variants.py --half A base ts ...``
(``--half A`` chooses, ``--half B`` checks on the disjoint rows, ``--half all`` reports);
``--trace SEED`` prints every batch of one campaign. Writes nothing unless ``--out``.
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


def fit_trees(
    X_train: np.ndarray, y_train: np.ndarray, X_pool: np.ndarray, model: str, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(per-tree predictions or None, mean, sd, labels as the model saw them)."""
    if model == "gp":
        mu, sd = fit_gp(X_train, y_train, X_pool, seed)
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
    "rank_x_prior": Variant(mli_times_prior, fit="rank_random_forest"),
    "rank_ei_x_prior": Variant(times_prior(s_ei), fit="rank_random_forest"),
}


def feature_names(preset: str) -> tuple[list[str], list[str]]:
    """Column names of the featurize preset on OBELiX and the compositions of the rows, in
    :func:`load`'s order."""
    from miscreen import schema as S
    from miscreen.featurize import featurize_records
    from miscreen.fetch.obelix import load_obelix

    records, _ = load_obelix("all", with_structures=False)
    feats = featurize_records(records, preset)[0]
    comps = records.set_index(S.ID).loc[feats.index, S.COMPOSITION].astype(str).tolist()
    return list(feats.columns), comps


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
    prior = prior_score(components)
    cols, compositions = feature_names("composition")
    compositions = [compositions[i] for i in rows]
    frac = [i for i, c in enumerate(cols) if c.removeprefix("comp:").isalpha()]
    soft = components[[POLARIZABILITY, LI_FRACTION]].to_numpy(dtype=float)
    soft = np.nan_to_num(soft, nan=float(np.nanmin(soft[:, 0])))  # no anion: the hardest
    feats = {
        "plain": X,
        "prior": np.hstack([X, components[list(COMPONENTS)].to_numpy(dtype=float)]),
        "frac": np.hstack([X[:, frac], soft]),
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
        for s in range(seeds):
            tr = make_trace(y, top, systems) if trace_seed == s else None
            if trace_seed is not None and trace_seed != s:
                continue
            res = campaign(Xv, y, systems, prior, targets, s, v, tr)
            got.append(CAP + 1 if res["top5pct_5"] is None else res["top5pct_5"])
        if trace_seed is not None:
            print(name, got)
            continue
        acc = acceleration(np.asarray(random, float), np.asarray(got, float), 0, rng)
        out[name] = {"median": float(np.median(got)), "per_seed": got, "acceleration": acc}
        print(
            f"{name:>14}: median {np.median(got):6.1f}  mean {np.mean(got):6.1f}  "
            f"x{acc['ratio_of_medians']:.2f} [{acc['bootstrap_5']:.2f}, "
            f"{acc['bootstrap_95']:.2f}]  {got}  ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    return out


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
