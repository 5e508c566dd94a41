"""Fit one conformal model on a feature table and report its cross-validated error."""

from __future__ import annotations

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from miscreen import schema as S
from miscreen.config import ModelConfig
from miscreen.train.evaluate import regression_metrics
from miscreen.train.model import ConformalRegressor, make_regressor


def doi_groups(labels: pd.DataFrame) -> np.ndarray:
    """CV groups: the publication (DOI); rows without a DOI get their own group each."""
    doi = labels[S.DOI] if S.DOI in labels else pd.Series(np.nan, index=labels.index)
    own = pd.Series(labels.index.astype(str), index=labels.index)
    return doi.where(doi.notna() & (doi.astype(str) != ""), own).astype(str).to_numpy()


def fit_conformal(
    features: pd.DataFrame, labels: pd.DataFrame, cfg: ModelConfig, seed: int
) -> tuple[ConformalRegressor, dict]:
    """Fit on rows of ``labels`` (indexed like ``features``); CV is grouped by DOI so one
    publication's entries never sit on both sides of a fold. -> (model, cv metrics)."""
    y = labels[S.TARGET].to_numpy(dtype=float)
    groups = doi_groups(labels)
    model = ConformalRegressor(
        make_regressor(cfg.kind, cfg.n_estimators, seed), n_folds=cfg.cv_folds, seed=seed
    )
    # one BLAS/OpenMP thread: these models are small, and OpenMP threads spinning on a busy
    # or shared node (HPC allocations, CI) can slow gradient boosting down many times over
    with threadpool_limits(limits=1):
        model.fit(features.to_numpy(dtype=float), y, groups=groups)
    cv = regression_metrics(y, model.oof_predictions_, prefix="cv_")
    cv["cv_scheme"] = f"GroupKFold({cfg.cv_folds}) by DOI on the training split"
    return model, cv
