"""Fit one conformal model on a feature table and report its cross-validated error."""

from __future__ import annotations

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from miscreen import schema as S
from miscreen.config import ModelConfig
from miscreen.errors import ConfigError
from miscreen.progress import Progress
from miscreen.train.estimators import (
    SEARCH_GRIDS,
    ConformalRegressor,
    cv_scheme,
    cv_splits,
    make_regressor,
)
from miscreen.train.evaluate import regression_metrics


def doi_groups(labels: pd.DataFrame) -> np.ndarray:
    """CV groups: the publication (DOI); rows without a DOI get their own group each."""
    doi = labels[S.DOI] if S.DOI in labels else pd.Series(np.nan, index=labels.index)
    own = pd.Series(labels.index.astype(str), index=labels.index)
    return doi.where(doi.notna() & (doi.astype(str) != ""), own).astype(str).to_numpy()


def fit_conformal(
    features: pd.DataFrame, labels: pd.DataFrame, cfg: ModelConfig, seed: int, jobs: int = 1
) -> tuple[ConformalRegressor, dict]:
    """Fit on rows of ``labels`` (indexed like ``features``); CV is grouped by DOI so one
    publication's entries never sit on both sides of a fold; the fold fits run in ``jobs``
    processes. -> (model, cv metrics)."""
    X = features.to_numpy(dtype=float)
    y = labels[S.TARGET].to_numpy(dtype=float)
    groups = doi_groups(labels)
    estimator = make_regressor(cfg.kind, cfg.n_estimators, seed)
    grid = SEARCH_GRIDS.get(cfg.kind, {}) if cfg.tune else {}
    splits = cv_splits(X, y, groups, cfg.cv_folds, seed)
    # one BLAS/OpenMP thread: these models are small, and OpenMP threads spinning on a busy
    # or shared node (HPC allocations, CI) can slow gradient boosting down many times over
    scheme = cv_scheme(groups, cfg.cv_folds)
    with threadpool_limits(limits=1):
        tuning = tune(estimator, grid, X, y, splits, scheme) if grid else None
        if tuning and tuning.get("searched"):
            estimator.set_params(**tuning["best_params"])
        elif cfg.hyperparameters:
            estimator.set_params(**_known(estimator, cfg.hyperparameters))
            tuning = {"searched": False, "recorded": dict(cfg.hyperparameters)}
        model = ConformalRegressor(estimator, n_folds=cfg.cv_folds, seed=seed, n_jobs=jobs)
        model.fit(X, y, groups=groups)
    cv = regression_metrics(y, model.oof_predictions_, prefix="cv_")
    cv["cv_scheme"] = f"{scheme} on the training split"
    cv["hyperparameters"] = tuning or {"searched": False}
    return model, cv


def tune(estimator, grid: dict, X: np.ndarray, y: np.ndarray, splits: list, scheme: str) -> dict:
    """Grid search by CV MAE over ``splits`` (DOI-grouped folds of the training rows, described
    by ``scheme``) -> the chosen parameters and every candidate's CV MAE (for ``model.json``).
    Ties go to the first grid point, as in scikit-learn's GridSearchCV."""
    from sklearn.base import clone
    from sklearn.model_selection import ParameterGrid, cross_val_score

    known = estimator.get_params()
    grid = {name: values for name, values in grid.items() if name in known}
    if not grid:
        return {"searched": False}
    points = list(ParameterGrid(grid))
    results = []
    label = f"grid search: {len(points)} settings x {len(splits)} folds"
    with Progress(label, len(points), "settings") as progress:
        for params in points:
            model = clone(estimator).set_params(**params)
            scores = cross_val_score(model, X, y, cv=splits, scoring="neg_mean_absolute_error")
            results.append({"params": params, "cv_mae": float(-np.mean(scores))})
            progress.advance()
    best = min(range(len(results)), key=lambda i: (results[i]["cv_mae"], i))
    return {
        "searched": True,
        "scheme": f"grid search, {scheme}, MAE, training split only",
        "best_params": results[best]["params"],
        "best_cv_mae": results[best]["cv_mae"],
        "candidates": results,
    }


def _known(estimator, params: dict) -> dict:
    """``params`` that ``estimator`` has; an unknown name is an error listing the known ones."""
    known = estimator.get_params()
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ConfigError(
            f"model.hyperparameters {unknown} are not parameters of this model kind; "
            f"known: {', '.join(sorted(k for k in known if '__' in k))}"
        )
    return params
