"""Predict records with a run's models: each row by the model its kind is routed to."""

from __future__ import annotations

import pandas as pd

from miscreen import schema as S
from miscreen.featurize import FeatureOptions, featurize_records
from miscreen.train.persist import TrainedModel
from miscreen.train.routing import ROW_KINDS, TrainResult, row_kinds


def predict_frame(
    estimator, features: pd.DataFrame, interval: float, fast: float = S.FAST_LOG10_SIGMA
) -> pd.DataFrame:
    """Predictions, a central ``interval`` (e.g. 0.8), the probability of a log10 sigma of at
    least ``fast`` (``p_fast``) and the out-of-domain flag per row.

    ``uncertainty`` is the half-width of that interval in log10 S/cm.
    """
    X = features.to_numpy(dtype=float)
    pred, lo, hi, p_fast = estimator.predict_distribution(X, interval, fast)
    dist, outside = estimator.domain_distance(X)
    return pd.DataFrame(
        {
            S.PRED: pred,
            S.LOWER: lo,
            S.UPPER: hi,
            S.UNCERTAINTY: (hi - lo) / 2,
            S.P_FAST: p_fast,
            S.DOMAIN_DISTANCE: dist,
            S.OUT_OF_DOMAIN: outside,
        },
        index=features.index,
    )


def rests_on(model: TrainedModel, features: pd.DataFrame, k: int = 3) -> list[str]:
    """Per row, the ``k`` training rows its forest's prediction rests on most, as
    "formula (id, log10 sigma) weight" (:meth:`ConformalRegressor.analogues`); '' for a model
    saved without them."""
    table = model.meta.get("training_table") or []
    well_formed = isinstance(table, list) and all(
        isinstance(t, list) and len(t) == 3 and isinstance(t[2], int | float) for t in table
    )
    if not table or not well_formed:  # an older model.json, or one edited by hand
        return [""] * len(features)
    positions, weights = model.estimator.analogues(features.to_numpy(dtype=float), k)
    if not positions.shape[1]:
        return [""] * len(features)
    return [
        ", ".join(
            f"{table[p][1]} ({table[p][0]}, {table[p][2]:.1f}) {w:.0%}"
            for p, w in zip(row_p, row_w, strict=True)
            if p < len(table)
        )
        for row_p, row_w in zip(positions, weights, strict=True)
    ]


def predict_records(
    models: TrainResult,
    records: pd.DataFrame,
    interval: float,
    features: FeatureOptions | None = None,
    fast: float = S.FAST_LOG10_SIGMA,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Predict every record with the model chosen for its input kind (structure; cell; a
    composition alone) -> (records + prediction columns, failures). The ``model`` column
    says which model predicted each row; ``p_fast`` is the probability of a log10 sigma of
    at least ``fast`` from that model's conformal predictive distribution."""
    features = features or FeatureOptions()
    records = records.reset_index(drop=True)
    kinds = row_kinds(records)
    parts, failures = [], [S.empty_failures()]
    for kind in ROW_KINDS:
        rows = records[kinds == kind]
        if rows.empty:
            continue
        model = models.for_kind(kind)
        table, fails, schema = featurize_records(rows, model.schema.preset, features)
        model.schema.check(schema)
        failures.append(fails)
        if table.empty:
            continue
        pred = predict_frame(model.estimator, table, interval, fast)
        pred[S.MODEL] = model.name
        pred[S.RESTS_ON] = rests_on(model, table)
        parts.append(pred)
    preds = pd.concat(parts) if parts else pd.DataFrame(columns=[S.MODEL])
    out = records.merge(preds, left_on=S.ID, right_index=True, how="left")
    return out, S.concat(*failures)
