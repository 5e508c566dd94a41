"""Metrics for regressors of log10 conductivity."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

METRICS = ("mae", "rmse", "r2", "spearman")


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
