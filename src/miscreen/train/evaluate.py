"""Metrics for regressors of log10 conductivity."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from miscreen import schema as S

METRICS = ("mae", "rmse", "r2", "spearman")

# Published results on OBELiX's official test split (MAE in log10 S/cm): Therrien et al.,
# Digital Discovery (2026), arXiv:2502.14234.
PUBLISHED_BASELINES = {
    "random_forest_test_mae": 1.54,
    "random_forest_test_mae_cif_subset": 1.82,
    "median_test_mae": 2.16,
    "experimental_noise": 0.41,
}
BASELINE_LABELS = {
    "random_forest_test_mae": "random forest (OBELiX paper), all 121 test rows",
    "random_forest_test_mae_cif_subset": "random forest (OBELiX paper), 67 test rows with CIFs",
    "median_test_mae": "predicting the median",
    "experimental_noise": "experimental repeat noise",
}


def regression_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, prefix: str = "", suffix: str = ""
) -> dict:
    """MAE, RMSE, R², Spearman and the row count as ``{prefix}mae{suffix}`` ... and
    ``{prefix}n{suffix}`` (e.g. ``test_mae_cif_subset``, ``test_n_cif_subset``)."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    n = len(y_true)
    if n == 0:
        return {f"{prefix}n{suffix}": 0}
    err = y_pred - y_true
    ss_tot = float(np.sum((y_true - y_true.mean()) ** 2))
    out = {
        f"{prefix}mae{suffix}": float(np.mean(np.abs(err))),
        f"{prefix}rmse{suffix}": float(np.sqrt(np.mean(err**2))),
        f"{prefix}r2{suffix}": float(1 - np.sum(err**2) / ss_tot) if ss_tot > 0 else float("nan"),
        f"{prefix}spearman{suffix}": float(spearmanr(y_true, y_pred).statistic)
        if n > 2
        else float("nan"),
        f"{prefix}n{suffix}": n,
    }
    return out


def coverage(y_true: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    y_true = np.asarray(y_true, dtype=float)
    return float(np.mean((y_true >= lower) & (y_true <= upper))) if len(y_true) else float("nan")


def test_metrics(
    predicted: pd.DataFrame, interval: float, fast: float = S.FAST_LOG10_SIGMA
) -> dict:
    """Metrics of predicted labelled rows: all rows, the CIF subset, and without censored
    rows, plus the coverage of the ``interval`` and the scores of ``p_fast`` (the
    probability of a log10 sigma of at least ``fast``, as the rows were predicted with)."""
    ok = predicted[S.PRED].notna()
    p = predicted[ok]
    y, yhat = p[S.TARGET].to_numpy(float), p[S.PRED].to_numpy(float)
    cif = S.has_structure(p).to_numpy()
    unc = ~p[S.CENSORED].astype(bool).to_numpy()
    out = regression_metrics(y, yhat, prefix="test_")
    out |= regression_metrics(y[cif], yhat[cif], prefix="test_", suffix="_cif_subset")
    out |= regression_metrics(y[unc], yhat[unc], prefix="test_", suffix="_uncensored")
    out["test_mae_bound_aware"] = bound_aware_mae(p)
    out[f"test_coverage_{round(interval * 100)}"] = coverage(
        y, p[S.LOWER].to_numpy(float), p[S.UPPER].to_numpy(float)
    )
    out[f"test_coverage_{round(interval * 100)}_bound_aware"] = bound_aware_coverage(p)
    if S.P_FAST in p:
        out |= p_fast_metrics(p, fast)
    out["test_rows_without_prediction"] = int((~ok).sum())
    return out


def p_fast_metrics(predicted: pd.DataFrame, fast: float = S.FAST_LOG10_SIGMA) -> dict:
    """How well ``p_fast`` (the probability of log10 sigma >= ``fast``) says which rows are
    fast: its Brier score, that of the base rate (the share of fast rows, a constant), the
    mean probability beside the share of fast rows, and the share of fast rows among the
    rows it puts at 0.5 or more. A censored row (bound <= ``fast``) is not fast."""
    p = predicted[S.P_FAST].to_numpy(float)
    fast_rows = (predicted[S.TARGET].to_numpy(float) >= fast).astype(float)
    likely = p >= 0.5
    return {
        "test_p_fast_brier": float(np.mean((p - fast_rows) ** 2)),
        "test_p_fast_brier_base_rate": float(np.mean((fast_rows.mean() - fast_rows) ** 2)),
        "test_p_fast_mean": float(p.mean()),
        "test_fast_share": float(fast_rows.mean()),
        "test_fast_share_where_p_fast_ge_0.5": float(fast_rows[likely].mean())
        if likely.any()
        else float("nan"),
        "test_p_fast_ge_0.5_n": int(likely.sum()),
    }


def _bounds(predicted: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, censored, log10 bound: the label itself where no bound is known)."""
    y = predicted[S.TARGET].to_numpy(float)
    censored = predicted[S.CENSORED].astype(bool).to_numpy()
    bound = (
        predicted[S.CENSOR_BOUND].to_numpy(float)
        if S.CENSOR_BOUND in predicted
        else np.full(len(y), np.nan)
    )
    return y, censored, np.where(np.isfinite(bound), bound, y)


def bound_aware_coverage(predicted: pd.DataFrame) -> float:
    """Interval coverage where a censored row counts as covered when its interval reaches
    at or below its bound (its true value may be anywhere below); the plain coverage puts
    it at -15."""
    if predicted.empty:
        return float("nan")
    y, censored, bound = _bounds(predicted)
    lower, upper = predicted[S.LOWER].to_numpy(float), predicted[S.UPPER].to_numpy(float)
    covered = np.where(censored, lower <= bound, (y >= lower) & (y <= upper))
    return float(np.mean(covered))


def bound_aware_mae(predicted: pd.DataFrame) -> float:
    """MAE where a censored row ("below 1e-10 S/cm") counts as exact when the prediction is
    at or below its bound, and otherwise by its distance to the bound; measured rows as usual.
    The plain MAE keeps OBELiX's -15 convention for comparability."""
    if predicted.empty:
        return float("nan")
    yhat = predicted[S.PRED].to_numpy(float)
    y, censored, bound = _bounds(predicted)
    err = np.where(censored, np.maximum(yhat - bound, 0.0), np.abs(yhat - y))
    return float(np.mean(err))
