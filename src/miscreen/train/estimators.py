"""The estimators: scikit-learn Pipelines with imputation inside, and a conformal wrapper
that gives every prediction a calibrated interval and an out-of-domain flag."""

from __future__ import annotations

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.ensemble import (
    ExtraTreesRegressor,
    HistGradientBoostingRegressor,
    RandomForestRegressor,
    VotingRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.model_selection import GroupKFold, KFold
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from miscreen.config import ModelKind
from miscreen.progress import Progress

# Missing descriptors (no structure, no Li site, ...) become a constant far below any real
# value, so trees can separate "absent" from "typical" -- median imputation would make a
# composition-only row look like an average structure. Chosen by grouped CV on the training
# split (CV MAE on rows with structures 1.866 vs 1.895 with median imputation).
MISSING = -999.0


def per_tree_predictions(forest, X: np.ndarray) -> np.ndarray:
    """(n_trees, n_rows) predictions; ``X`` is validated float32 once, so each tree can skip
    its own input check."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    return np.stack([tree.predict(X, check_input=False) for tree in forest.estimators_])


class MedianExtraTreesRegressor(ExtraTreesRegressor):
    """Extra trees whose prediction is the median of the trees' predictions, not the mean.

    The median estimates the conditional median, the MAE-optimal prediction, and resists
    the bimodal targets of this field (censored values at -15 beside ordinary conductors).
    Grouped CV on the OBELiX training split: MAE 1.434 vs 1.439 alone, 1.404 vs 1.422 when
    averaged with gradient boosting.
    """

    def predict(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32, ensure_all_finite=False)
        return np.median(per_tree_predictions(self, X), axis=0)


# Interval half-width = q x (tree spread + SPREAD_FLOOR x median calibration spread). The
# floor keeps intervals from following the spread too closely: far from the training data
# the trees disagree more than the errors grow. Chosen on the training split alone, by
# nested DOI-grouped CV of the whole interval procedure: the narrowest intervals whose
# coverage stays within 2 points of nominal at 80 % and 95 % (floor x0.25: coverage
# 0.791/0.950, mean 80 % width 4.97; x0.5: 0.803/0.948, 4.61; x1: 0.808/0.962, 4.30;
# x2: 0.831/0.967, 4.19; constant width: 0.810/0.967, 4.35).
SPREAD_FLOOR = 1.0
# the domain distance is recomputed exactly to this many nearest rows found by the search
DOMAIN_CANDIDATES = 5

# Hyperparameters searched by grouped CV on the training split when ``model.tune`` is on.
# Small on purpose: a few hundred labelled rows cannot support a wide search without
# fitting the CV folds themselves.
SEARCH_GRIDS: dict[str, dict[str, list]] = {
    "extra_trees": {"model__max_features": [1.0, 0.5, 0.3]},
    "random_forest": {"model__max_features": [0.3, 0.5, 1.0]},
    "hist_gradient_boosting": {
        "model__learning_rate": [0.05, 0.1],
        "model__max_leaf_nodes": [15, 31],
    },
    "ensemble": {"model__et__max_features": [1.0, 0.5]},
}


def _grouped(groups, n_folds: int) -> bool:
    return groups is not None and len(np.unique(groups)) >= n_folds


def cv_splits(X, y, groups=None, n_folds: int = 5, seed: int = 0) -> list:
    """Folds keeping each group (publication) whole; plain shuffled K-fold when there are
    no groups or too few of them."""
    if _grouped(groups, n_folds):
        return list(GroupKFold(n_folds).split(X, y, groups))
    return list(KFold(n_folds, shuffle=True, random_state=seed).split(X))


def cv_scheme(groups, n_folds: int) -> str:
    """How :func:`cv_splits` cuts the folds, in words."""
    if _grouped(groups, n_folds):
        return f"GroupKFold({n_folds}) by DOI"
    return f"shuffled KFold({n_folds}) (fewer than {n_folds} DOIs to group by)"


def make_regressor(
    kind: ModelKind,
    n_estimators: int = 500,
    seed: int = 0,
) -> Pipeline:
    """An imputing pipeline around the named regressor (single-threaded: parallelism is
    decided by the caller, never by grabbing every core).

    The ensemble averages median extra trees and gradient boosting. It had a third member,
    distance-weighted nearest neighbours in element-fraction space, which helped DOI-grouped
    CV (MAE 1.359 vs 1.404) but copied the labels of the nearest measured compositions onto
    new chemistry: ``benchmarks/model_research.py`` (training split; mean of DOI-grouped,
    leave-cluster-out and chemical-system CV; 5 seeds; censored rows at their bound) gives
    MAE 2.225 without it vs 2.315 with it for compositions, 2.141 vs 2.251 with cells,
    2.400 vs 2.525 with structures, lower on every seed."""
    et = MedianExtraTreesRegressor(n_estimators=n_estimators, random_state=seed, n_jobs=1)
    rf = RandomForestRegressor(
        n_estimators=n_estimators, max_features=0.3, random_state=seed, n_jobs=1
    )
    hgb = HistGradientBoostingRegressor(max_iter=300, learning_rate=0.05, random_state=seed)
    members = [("et", et), ("hgb", hgb)]
    models = {
        "extra_trees": et,
        "random_forest": rf,
        "hist_gradient_boosting": hgb,
        "ensemble": VotingRegressor(members),
    }
    if kind not in models:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {sorted(models)}")
    return Pipeline(
        [
            (
                "impute",
                SimpleImputer(strategy="constant", fill_value=MISSING, keep_empty_features=True),
            ),
            ("model", models[kind]),
        ]
    )


def tree_spread(pipeline: Pipeline, X: np.ndarray) -> np.ndarray:
    """Standard deviation of the per-tree predictions of the pipeline's forest (the first
    forest member of a voting ensemble); zeros when the model has no forest."""
    forest = first_forest(pipeline)
    if forest is None:
        return np.zeros(len(X))
    return per_tree_predictions(forest, pipeline[:-1].transform(X)).std(axis=0)


def first_forest(pipeline: Pipeline) -> ExtraTreesRegressor | RandomForestRegressor | None:
    """The pipeline's forest (the first forest member of a voting ensemble), or None."""
    model = pipeline[-1]
    members = model.estimators_ if isinstance(model, VotingRegressor) else [model]
    forests = [m for m in members if isinstance(m, ExtraTreesRegressor | RandomForestRegressor)]
    return forests[0] if forests else None


def leaf_weights(leaves_train: np.ndarray, leaves_query: np.ndarray) -> np.ndarray:
    """(queries, training rows) weights of the training rows behind each query's forest
    prediction, from their leaves (``forest.apply``, rows x trees): per tree, every training
    row in the query's leaf gets 1 / (rows in that leaf); averaged over the trees. A row of
    weights sums to 1, and for a forest without bootstrap (extra trees) ``weights @ y_train``
    is the mean of the trees' predictions."""
    weights = np.zeros((len(leaves_query), len(leaves_train)))
    for t in range(leaves_query.shape[1]):
        same = leaves_query[:, t, None] == leaves_train[None, :, t]
        weights += same / same.sum(axis=1, keepdims=True)
    return weights / leaves_query.shape[1]


def _fit_fold(base, X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> tuple:
    """A clone of ``base`` fitted on the ``train`` rows -> (it, its predictions and tree
    spread on the ``test`` rows); one BLAS/OpenMP thread, wherever it runs."""
    with threadpool_limits(limits=1):
        est = clone(base).fit(X[train], y[train])
        if not len(test):
            return est, np.empty(0), np.empty(0)
        return est, est.predict(X[test]), tree_spread(est, X[test])


class ConformalRegressor(RegressorMixin, BaseEstimator):
    """Cross-conformal intervals around any regressor.

    ``fit`` computes out-of-fold absolute residuals (grouped folds when ``groups`` are
    given, so one publication never informs its own calibration), then refits on all
    rows. The interval half-width at level ``alpha`` is the corresponding quantile of those
    residuals, scaled per sample by a difficulty estimate so that harder candidates get
    wider intervals: the spread of the individual trees' predictions plus a floor
    (``SPREAD_FLOOR``), always measured on rows the model did not see (out-of-fold rows
    during calibration, new rows at prediction time).

    It also remembers the training rows (scaled) to flag predictions outside the training
    domain: nearest-neighbour distance above the 95th percentile of the training rows' own
    leave-one-out neighbour distances.
    """

    def __init__(self, estimator=None, n_folds: int = 5, seed: int = 0, n_jobs: int = 1):
        self.estimator = estimator
        self.n_folds = n_folds
        self.seed = seed
        self.n_jobs = n_jobs  # the fold fits and the final fit run in this many processes

    def fit(self, X, y, groups=None):
        X, y = validate_data(
            self, X, y, ensure_all_finite="allow-nan", y_numeric=True, dtype=np.float64
        )
        base = self.estimator if self.estimator is not None else make_regressor("extra_trees")
        if len(y) < max(self.n_folds, 2):
            raise ValueError(
                f"n_samples={len(y)}: cross-conformal calibration needs at least "
                f"{max(self.n_folds, 2)} labelled rows (one per fold)"
            )
        splits = cv_splits(X, y, groups, self.n_folds, self.seed)
        oof = np.empty_like(y, dtype=float)
        spread = np.empty_like(y, dtype=float)
        label = f"fit on {len(y)} rows ({len(splits)} CV folds + final)"
        everything = np.arange(len(y))
        jobs = [(tr, te) for tr, te in splits] + [(everything, everything[:0])]
        with Progress(label, len(jobs), "fits") as progress:
            fitted = Parallel(n_jobs=self.n_jobs, return_as="generator")(
                delayed(_fit_fold)(base, X, y, tr, te) for tr, te in jobs
            )
            for (_, test_idx), result in zip(jobs, fitted, strict=True):
                # the final fit, on every row, comes last and stays as estimator_
                self.estimator_, oof[test_idx], spread[test_idx] = result
                progress.advance()
        self.oof_predictions_ = oof
        self.spread_floor_ = float(np.median(spread)) * SPREAD_FLOOR + 1e-9
        self.residuals_ = np.abs(y - oof)
        self.scores_ = self.residuals_ / (spread + self.spread_floor_)
        self.signed_scores_ = (y - oof) / (spread + self.spread_floor_)
        self._fit_domain(X)
        self._fit_analogues(X)
        return self

    def _fit_analogues(self, X) -> None:
        """The leaf of every training row in every tree of the final forest (int32, rows x
        trees), for :meth:`analogues`; no columns when the model has no forest."""
        forest = first_forest(self.estimator_)
        if forest is None:
            self.train_leaves_ = np.zeros((len(X), 0), dtype=np.int32)
            return
        Xt = np.asarray(self.estimator_[:-1].transform(X), dtype=np.float32)
        self.train_leaves_ = forest.apply(Xt).astype(np.int32)

    def analogues(self, X, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
        """-> (positions of the ``k`` training rows each prediction rests on most, their
        weights), both (rows, k). Per tree, every training row in the row's leaf weighs
        1 / (training rows in that leaf); averaged over the trees a row's weights sum to 1,
        and for extra trees (no bootstrap) ``weights @ y_train`` is the trees' mean
        prediction. Positions count the training rows in the order ``fit`` saw them. A model
        saved without leaves (or without a forest) gives no columns."""
        leaves_train = getattr(self, "train_leaves_", None)
        forest = first_forest(self.estimator_)
        usable = (
            forest is not None
            and isinstance(leaves_train, np.ndarray)
            and leaves_train.ndim == 2
            and leaves_train.shape[1] == len(forest.estimators_)
        )
        if not usable:  # an older model, no forest, or leaves that do not fit the forest
            return np.zeros((len(X), 0), dtype=int), np.zeros((len(X), 0))
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan", dtype=np.float64)
        leaves = forest.apply(np.asarray(self.estimator_[:-1].transform(X), dtype=np.float32))
        weights = leaf_weights(leaves_train, leaves)
        top = np.argsort(-weights, axis=1, kind="stable")[:, :k]
        return top, np.take_along_axis(weights, top, axis=1)

    def _fit_domain(self, X) -> None:
        self.domain_scaler_ = make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()
        ).fit(X)
        Z = self.domain_scaler_.transform(X)
        self.domain_rows_ = np.asarray(Z, dtype=np.float64)  # for exact distances
        self.domain_nn_ = NearestNeighbors(n_neighbors=2).fit(Z)
        dist, _ = self.domain_nn_.kneighbors(Z)
        self.domain_threshold_ = float(np.quantile(dist[:, 1], 0.95))

    def predict(self, X):
        check_is_fitted(self, "estimator_")
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan", dtype=np.float64)
        return self.estimator_.predict(X)

    def predict_interval(self, X, alpha: float = 0.8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """-> (prediction, lower, upper) for a central interval of nominal coverage alpha."""
        pred, lo, hi, _ = self.predict_distribution(X, alpha)
        return pred, lo, hi

    def prob_above(self, X, threshold: float) -> np.ndarray:
        """The probability that the target is >= ``threshold``, per row (see
        :meth:`predict_distribution`)."""
        return self.predict_distribution(X, threshold=threshold)[3]

    def predict_distribution(
        self, X, alpha: float = 0.8, threshold: float | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """-> (prediction, lower, upper, P(target >= threshold)) per row; the last is NaN
        without a threshold. The trees run once for all four.

        The interval is the central one of nominal coverage ``alpha``. The probability is the
        share of the out-of-fold signed residuals, each scaled by the row's difficulty (tree
        spread plus the floor, as for the intervals), that carry the prediction to the
        threshold or above: a conformal predictive distribution on the same scale as the
        intervals (those come from the absolute residuals and are symmetric; the signed
        ones keep a bias the model has). A model saved before signed residuals were kept
        uses the absolute ones with both signs (a symmetric distribution)."""
        check_is_fitted(self, "estimator_")
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan", dtype=np.float64)
        pred = self.estimator_.predict(X)
        scale = tree_spread(self.estimator_, X) + self.spread_floor_
        n = len(self.scores_)
        level = min(1.0, np.ceil((n + 1) * alpha) / n)
        half = float(np.quantile(self.scores_, level, method="higher")) * scale
        p_above = np.full(len(pred), np.nan)
        if threshold is not None:
            signed = getattr(self, "signed_scores_", None)
            if signed is None:
                signed = np.concatenate([self.scores_, -self.scores_])
            ordered = np.sort(np.asarray(signed, dtype=float))
            needed = (threshold - pred) / scale  # the scaled residual that reaches it
            p_above = (len(ordered) - np.searchsorted(ordered, needed, side="left")) / len(ordered)
        return pred, pred - half, pred + half, p_above

    def domain_distance(self, X) -> tuple[np.ndarray, np.ndarray]:
        """-> (nearest training-row distance in scaled feature space, outside-domain flag).

        The neighbour search's own distances depend on how many rows are asked at once (the
        brute-force search expands |a - b|^2 as a sum of dot products, differing by ~1e-7
        between batches), so the distance to each of the few nearest rows it finds is
        recomputed directly: a row gets the same value in any chunk or shard."""
        check_is_fitted(self, "domain_nn_")
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan", dtype=np.float64)
        Z = self.domain_scaler_.transform(X)
        k = min(DOMAIN_CANDIDATES, self.domain_nn_.n_samples_fit_)
        dist, idx = self.domain_nn_.kneighbors(Z, n_neighbors=k)
        train = getattr(self, "domain_rows_", None)  # absent in models saved before
        if isinstance(train, np.ndarray) and train.shape == (
            self.domain_nn_.n_samples_fit_,
            Z.shape[1],
        ):
            dist = np.linalg.norm(Z[:, None, :] - train[idx], axis=2)
        d = dist.min(axis=1)
        return d, d > self.domain_threshold_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
