"""Screen candidates: predict with intervals, apply filters, rank, and say why."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pymatgen.core import Composition

from miscreen import schema as S

PRED = "predicted_log10_sigma"
LOWER = "lower"
UPPER = "upper"
UNCERTAINTY = "uncertainty"
OUT_OF_DOMAIN = "out_of_domain"
RANK = "rank"
EXCLUDED = "excluded_reason"
SCORE = "score"


@dataclass(frozen=True)
class Filters:
    require_elements: tuple[str, ...] = ("Li",)
    exclude_elements: tuple[str, ...] = ()
    max_e_above_hull: float | None = None
    min_band_gap: float | None = None
    max_sites: int | None = None


def predict_frame(estimator, features: pd.DataFrame, interval: float) -> pd.DataFrame:
    """Predictions, a central ``interval`` (e.g. 0.8) and the out-of-domain flag per row.

    ``uncertainty`` is the half-width of that interval in log10 S/cm.
    """
    X = features.to_numpy(dtype=float)
    pred, lo, hi = estimator.predict_interval(X, alpha=interval)
    dist, outside = estimator.domain_distance(X)
    return pd.DataFrame(
        {
            PRED: pred,
            LOWER: lo,
            UPPER: hi,
            UNCERTAINTY: (hi - lo) / 2,
            "domain_distance": dist,
            OUT_OF_DOMAIN: outside,
        },
        index=features.index,
    )


def exclusion_reason(row: pd.Series, filters: Filters) -> str:
    """The first filter that removes this candidate, or '' when it passes."""
    try:
        elements = {el.symbol for el in Composition(row[S.COMPOSITION]).elements}
    except Exception:
        return "unparsable composition"
    missing = [e for e in filters.require_elements if e not in elements]
    if missing:
        return f"lacks required element(s) {', '.join(missing)}"
    banned = sorted(elements & set(filters.exclude_elements))
    if banned:
        return f"contains excluded element(s) {', '.join(banned)}"
    e_hull = _num(row.get(S.E_HULL))
    if filters.max_e_above_hull is not None and math.isfinite(e_hull):
        if e_hull > filters.max_e_above_hull:
            return f"e_above_hull {e_hull:.3f} > {filters.max_e_above_hull} eV/atom"
    gap = _num(row.get(S.BAND_GAP))
    if filters.min_band_gap is not None and math.isfinite(gap) and gap < filters.min_band_gap:
        return f"band_gap {gap:.2f} < {filters.min_band_gap} eV"
    nsites = _num(row.get("nsites"))
    if filters.max_sites is not None and math.isfinite(nsites) and nsites > filters.max_sites:
        return f"{int(nsites)} sites > max_sites {filters.max_sites}"
    return ""


def rank_candidates(frame: pd.DataFrame, filters: Filters, score: str = "mean") -> pd.DataFrame:
    """Add ``score``, ``excluded_reason`` and ``rank`` (1 = best; empty when excluded).

    ``score`` is the prediction (``mean``), the interval's lower bound (``lower``: risk
    averse) or its upper bound (``upper``: exploratory). Ties break by id, so the ranking
    is deterministic.
    """
    column = {"mean": PRED, "lower": LOWER, "upper": UPPER}[score]
    out = frame.copy()
    out[SCORE] = out[column]
    reasons = out.apply(exclusion_reason, axis=1, filters=filters)
    no_pred = out[PRED].isna()
    reasons = reasons.where(~no_pred | (reasons != ""), "no prediction (see failures.csv)")
    out[EXCLUDED] = reasons
    eligible = out[EXCLUDED] == ""
    order = out.loc[eligible].sort_values([SCORE, S.ID], ascending=[False, True]).index
    out[RANK] = pd.array([pd.NA] * len(out), dtype="Int64")
    out.loc[order, RANK] = np.arange(1, len(order) + 1)
    out["why"] = [_why(r) for _, r in out.iterrows()]
    return out.sort_values([RANK, S.ID], na_position="last").reset_index(drop=True)


def _why(row: pd.Series) -> str:
    if row.get(EXCLUDED):
        return f"excluded: {row[EXCLUDED]}"
    if pd.isna(row.get(PRED)):
        return ""
    parts = [f"log10 sigma {row[PRED]:.2f} [{row[LOWER]:.2f}, {row[UPPER]:.2f}]"]
    if bool(row.get(OUT_OF_DOMAIN)):
        parts.append("outside training domain")
    for col, label in ((S.E_HULL, "E_hull"), (S.BAND_GAP, "gap")):
        value = _num(row.get(col))
        if math.isfinite(value):
            parts.append(f"{label} {value:.2f}")
    return "; ".join(parts)


def _num(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
