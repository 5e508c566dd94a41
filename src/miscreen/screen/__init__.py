"""Screen candidates: predict with intervals (``screen.predict``), apply filters, rank, and
say why."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from pymatgen.core import Composition
from scipy.stats import norm

from miscreen import schema as S
from miscreen.config import ScreenConfig
from miscreen.errors import UserError
from miscreen.screen.criteria import (
    COST,
    LI_FRACTION,
    NSITES,
    PARETO,
    PARETO_OBJECTIVES,
    SUPPLY_DRIVER,
    SUPPLY_RISK,
    add_criteria,
    pareto_front,
)
from miscreen.screen.known import KNOWN_MATCH
from miscreen.screen.redox import REDOX_ACTIVE, redox_reason

PRED, LOWER, UPPER, UNCERTAINTY = S.PRED, S.LOWER, S.UPPER, S.UNCERTAINTY
OUT_OF_DOMAIN, RANK, EXCLUDED, SCORE = S.OUT_OF_DOMAIN, S.RANK, S.EXCLUDED, S.SCORE
STABILITY_KNOWN = "stability_known"  # whether e_above_hull was known for the row


@dataclass(frozen=True)
class Filters:
    require_elements: tuple[str, ...] = ("Li",)
    require_any_elements: tuple[str, ...] = ()
    exclude_elements: tuple[str, ...] = ()
    max_e_above_hull: float | None = None
    min_band_gap: float | None = None
    min_p_band_gap: float = 0.1  # an estimated gap removes a row only below this P(gap >= min)
    redox_elements: frozenset[str] = frozenset()  # rows holding any are removed
    max_sites: int | None = None
    min_li_fraction: float | None = None  # atomic fraction of Li, 0..1
    exclude_known: bool = False  # leave out candidates that are measured materials

    @classmethod
    def from_config(cls, cfg: ScreenConfig) -> Filters:
        """The filters of a run's ``screen`` settings."""
        return cls(
            require_elements=cfg.require_elements,
            require_any_elements=cfg.require_any_elements,
            exclude_elements=cfg.exclude_elements,
            max_e_above_hull=cfg.max_e_above_hull,
            min_band_gap=cfg.min_band_gap,
            min_p_band_gap=cfg.min_p_band_gap,
            redox_elements=frozenset(
                (REDOX_ACTIVE if cfg.redox_elements is None else cfg.redox_elements)
                if cfg.exclude_redox
                else ()
            ),
            max_sites=cfg.max_sites,
            min_li_fraction=cfg.min_li_fraction,
            exclude_known=cfg.exclude_known,
        )


@lru_cache(maxsize=65536)
def _elements(composition: str) -> frozenset[str] | str:
    """Element symbols of a composition string, or why it does not parse."""
    try:
        return frozenset(el.symbol for el in Composition(composition).elements)
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        return f"unparsable composition {composition!r}: {type(exc).__name__}: {exc}"


def exclusion_reason(row: Mapping, filters: Filters) -> str:
    """The first filter that removes this candidate (a row as a mapping), or '' when it passes."""
    if filters.exclude_known and row.get(KNOWN_MATCH):
        return f"already measured: {row[KNOWN_MATCH]}"
    elements = _elements(str(row[S.COMPOSITION]))
    if isinstance(elements, str):
        return elements
    missing = [e for e in filters.require_elements if e not in elements]
    if missing:
        return f"lacks required element(s) {', '.join(missing)}"
    if filters.require_any_elements and not elements & set(filters.require_any_elements):
        return f"none of {', '.join(filters.require_any_elements)} (require_any_elements)"
    banned = sorted(elements & set(filters.exclude_elements))
    if banned:
        return f"contains excluded element(s) {', '.join(banned)}"
    redox = redox_reason(elements & filters.redox_elements)
    if redox:
        return redox
    li = S.as_float(row.get(LI_FRACTION))
    if filters.min_li_fraction is not None and math.isfinite(li) and li < filters.min_li_fraction:
        return f"Li fraction {li:.3f} < min_li_fraction {filters.min_li_fraction}"
    e_hull = S.as_float(row.get(S.E_HULL))
    if filters.max_e_above_hull is not None and math.isfinite(e_hull):
        if e_hull > filters.max_e_above_hull:
            method = row.get(S.STABILITY_METHOD) or "source"
            return f"e_above_hull {e_hull:.3f} > {filters.max_e_above_hull} eV/atom ({method})"
    if filters.min_band_gap is not None:
        why = band_gap_reason(row, filters.min_band_gap, filters.min_p_band_gap)
        if why:
            return why
    nsites = S.as_float(row.get(NSITES))
    if filters.max_sites is not None and math.isfinite(nsites) and nsites > filters.max_sites:
        return f"{int(nsites)} sites > max_sites {filters.max_sites}"
    return ""


def band_gap_reason(row: Mapping, minimum: float, min_p: float) -> str:
    """Why a row's band gap removes it ('' when it stays). A source value (sd 0) is compared
    with ``minimum``; an estimate removes the row only when the probability that the gap
    reaches ``minimum`` (a normal with the estimate's sd) is below ``min_p``."""
    gap, sd = S.as_float(row.get(S.BAND_GAP)), S.as_float(row.get(S.BAND_GAP_SD))
    if not math.isfinite(gap):
        return ""
    method = row.get(S.BAND_GAP_METHOD) or "source"
    p = float(p_gap_at_least(gap, sd, minimum))
    if not math.isfinite(sd) or sd <= 0:
        return f"band_gap {gap:.2f} < {minimum} eV ({method})" if p == 0 else ""
    if p >= min_p:
        return ""
    return (
        f"band_gap {gap:.2f} +- {sd:.2f} eV ({method}): P(gap >= {minimum} eV) = {p:.2f} < {min_p}"
    )


def p_gap_at_least(gap: object, sd: object, minimum: float) -> np.ndarray:
    """The probability that a band gap is at least ``minimum`` eV (arrays or scalars): 1 or
    0 for a source value (sd 0 or missing), a normal with the estimate's sd otherwise; NaN
    where there is no gap."""
    gap = np.asarray(gap, dtype=float)
    sd = np.nan_to_num(np.asarray(sd, dtype=float))
    estimated = norm.sf(minimum, loc=gap, scale=np.where(sd > 0, sd, 1.0))
    p = np.where(sd > 0, estimated, (gap >= minimum).astype(float))
    return np.where(np.isfinite(gap), p, np.nan)


def p_band_gap(frame: pd.DataFrame, minimum: float) -> pd.Series:
    """Per row, :func:`p_gap_at_least` of its ``band_gap`` and ``band_gap_sd``; 1 where no
    gap is known at all (no information; the row's ``why`` says so)."""
    missing = pd.Series(np.nan, index=frame.index)
    gap = pd.to_numeric(frame.get(S.BAND_GAP, missing), errors="coerce")
    sd = pd.to_numeric(frame.get(S.BAND_GAP_SD, missing), errors="coerce")
    p = p_gap_at_least(gap.to_numpy(float), sd.to_numpy(float), minimum)
    return pd.Series(np.nan_to_num(p, nan=1.0), index=frame.index)


VOLUME_TOL = 0.02  # relative, per atom


def cell_volumes(frame: pd.DataFrame) -> np.ndarray:
    """Cell volumes from the lattice parameters, row by row (NaN where any is missing)."""
    a, b, c, alpha, beta, gamma = (
        pd.to_numeric(frame.get(k), errors="coerce").to_numpy(float) for k in S.LATTICE
    )
    ca, cb, cg = (np.cos(np.radians(angle)) for angle in (alpha, beta, gamma))
    root = 1 - ca * ca - cb * cb - cg * cg + 2 * ca * cb * cg
    with np.errstate(invalid="ignore"):
        return np.where(root > 0, a * b * c * np.sqrt(np.where(root > 0, root, 0.0)), np.nan)


def duplicate_of(frame: pd.DataFrame) -> pd.Series:
    """For each row, the id of an earlier row that is the same material ('' when none):
    the same reduced formula and space group and a volume per atom within 2 % -- the
    duplicates different snapshots of one database hold under different ids. The row kept
    is the one whose energy above hull is known, then the smallest id, so the choice does
    not depend on the order of the rows (shards, chunks)."""
    cols = [S.ID, S.FORMULA, S.SPACEGROUP, NSITES, *S.LATTICE]
    e_hull = frame[S.E_HULL] if S.E_HULL in frame else pd.Series(math.nan, index=frame.index)
    order = pd.DataFrame({"unknown": e_hull.isna(), "id": frame[S.ID].astype(str)})
    rows = frame.reindex(columns=cols).loc[order.sort_values(["unknown", "id"]).index]
    spg = pd.to_numeric(rows[S.SPACEGROUP], errors="coerce").to_numpy(float)
    n = pd.to_numeric(rows[NSITES], errors="coerce").to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_atom = np.where(n > 0, cell_volumes(rows) / n, np.nan)
    usable = np.isfinite(per_atom) & np.isfinite(spg) & rows[S.FORMULA].map(bool).to_numpy(bool)
    key = pd.Series(list(zip(rows[S.FORMULA].astype(str), spg, strict=True)), index=rows.index)
    shared = usable & key.duplicated(keep=False).to_numpy(bool)  # a row alone cannot be a twin
    twins: dict[object, str] = {}
    seen: dict[tuple[str, float], list[tuple[float, str]]] = {}
    for idx, k, v, id_ in zip(
        rows.index[shared], key[shared], per_atom[shared], rows[S.ID][shared], strict=True
    ):
        group = seen.setdefault(k, [])
        twin = next((i for w, i in group if abs(v - w) <= VOLUME_TOL * w), "")
        if twin:
            twins[idx] = twin
        else:
            group.append((v, str(id_)))
    return pd.Series([twins.get(i, "") for i in frame.index], index=frame.index, dtype=str)


def barrier_penalty(barriers: pd.Series) -> pd.Series:
    """The 3-D BVSE barrier (eV) for the score; a row without one (not checked, or no 3-D
    path) counts as the highest barrier found, so checking never makes a row worse off than
    not checking it."""
    values = pd.to_numeric(barriers, errors="coerce")
    worst = values.max() if values.notna().any() else 0.0
    return values.fillna(worst)


def barrier_shift(frame: pd.DataFrame, weight: float, reference: float) -> pd.Series:
    """The change of predicted log10 sigma the BVSE barrier brings: ``-weight`` x (barrier -
    ``reference``) in eV (see :func:`barrier_penalty`); 0 without barriers or weight."""
    if not weight or S.BVSE_E3D not in frame:
        return pd.Series(0.0, index=frame.index)
    return -weight * (barrier_penalty(frame[S.BVSE_E3D]) - reference)


def shifted_p_fast(frame: pd.DataFrame, shift: pd.Series, interval: float) -> pd.Series:
    """``p_fast`` after moving each row's predictive distribution by ``shift`` (log10 S/cm):
    the distribution is taken as normal with the sd of its central ``interval``, and the
    row's own ``p_fast`` fixes where the threshold sits in it (no shift: unchanged)."""
    p = pd.to_numeric(frame[S.P_FAST], errors="coerce").clip(1e-6, 1 - 1e-6)
    sd = (frame[UNCERTAINTY] / norm.ppf(0.5 + interval / 2)).clip(lower=1e-6)
    return pd.Series(norm.cdf(norm.ppf(p) + shift / sd), index=frame.index)


def rank_candidates(
    frame: pd.DataFrame,
    filters: Filters,
    score: str = "mean",
    supply_risk_weight: float = 0.0,
    barrier_weight: float = 0.0,
    barrier_reference: float = 0.0,
    interval: float = 0.8,
) -> pd.DataFrame:
    """Add criteria columns, ``score``, ``excluded_reason``, ``rank`` (1 = best; empty when
    excluded), ``pareto_optimal`` and ``why``.

    ``score`` is the probability of a fast conductor (``p_fast``; times the probability
    that the band gap reaches ``filters.min_band_gap`` when that is set, column
    ``p_band_gap``: a fast conductor that insulates electrons), the prediction
    (``mean``), the interval's lower bound (``lower``: risk averse) or its upper bound
    (``upper``: exploratory), each after the BVSE barrier moved the prediction by
    ``barrier_weight`` x (barrier - ``barrier_reference``) (:func:`barrier_shift`; for
    ``p_fast`` see :func:`shifted_p_fast`, with the model's central ``interval``), minus
    ``supply_risk_weight`` x supply risk (0..1). The Pareto front is taken over the ranked
    rows: conductivity (max), energy above hull (min; unknown counts as worst) and supply
    risk (min). Ties break by id, so the ranking is deterministic.
    """
    if score not in SCORE_COLUMNS:
        raise ValueError(f"score must be one of {sorted(SCORE_COLUMNS)}, got {score!r}")
    if supply_risk_weight < 0:
        raise ValueError(f"supply_risk_weight must be >= 0, got {supply_risk_weight}")
    out = add_criteria(frame)
    if barrier_weight < 0:
        raise ValueError(f"barrier_weight must be >= 0, got {barrier_weight}")
    shift = barrier_shift(out, barrier_weight, barrier_reference)
    if score == "p_fast" and S.P_FAST not in out:
        raise UserError(
            "these candidates carry no p_fast (screened before the score existed): screen "
            "them again, or set screen.score: mean"
        )
    if score == "p_fast":
        base = shifted_p_fast(out, shift, interval) if shift.any() else out[S.P_FAST]
        if filters.min_band_gap is not None:  # a fast conductor that insulates electrons
            out[S.P_BAND_GAP] = p_band_gap(out, filters.min_band_gap)
            base = base * out[S.P_BAND_GAP]
    else:
        base = out[SCORE_COLUMNS[score]] + shift
    out[SCORE] = base - supply_risk_weight * out[SUPPLY_RISK].fillna(0.0)
    out[STABILITY_KNOWN] = out[S.E_HULL].notna() if S.E_HULL in out else False
    rows = out.reindex(columns=FILTER_COLUMNS)
    reasons = pd.Series(
        [exclusion_reason(r, filters) for r in S.records(rows)], index=out.index, dtype=str
    )
    twins = duplicate_of(out)
    twin_reason = "same material as " + twins + " (formula, space group, volume per atom)"
    reasons = reasons.where((reasons != "") | (twins == ""), twin_reason)
    no_pred = out[PRED].isna()
    reasons = reasons.where(~no_pred | (reasons != ""), "no prediction (see failures.csv)")
    out[EXCLUDED] = reasons
    eligible = out[EXCLUDED] == ""
    order = out.loc[eligible].sort_values([SCORE, S.ID], ascending=[False, True]).index
    out[RANK] = pd.array([pd.NA] * len(out), dtype="Int64")
    out.loc[order, RANK] = np.arange(1, len(order) + 1)
    out[PARETO] = False
    for col in PARETO_OBJECTIVES:
        if col not in out:
            out[col] = math.nan
    out.loc[eligible, PARETO] = pareto_front(out.loc[eligible], PARETO_OBJECTIVES)
    n_ranked = len(order)
    shown = S.records(out.reindex(columns=WHY_COLUMNS))
    terms = [f"{supply_risk_weight:g} x supply risk"] if supply_risk_weight else []
    if S.P_BAND_GAP in out:
        terms.insert(0, f"x P(gap >= {filters.min_band_gap:g} eV)")
    if shift.any():
        terms.append(f"BVSE barrier x {barrier_weight:g} per eV")
    out[S.WHY] = [_why(r, score, terms, n_ranked) for r in shown]
    return out.sort_values([RANK, S.ID], na_position="last").reset_index(drop=True)


SCORE_COLUMNS = {"p_fast": S.P_FAST, "mean": PRED, "lower": LOWER, "upper": UPPER}
FILTER_COLUMNS = [
    S.COMPOSITION, LI_FRACTION, S.E_HULL, S.STABILITY_METHOD, S.BAND_GAP, S.BAND_GAP_SD,
    S.BAND_GAP_METHOD, NSITES, KNOWN_MATCH,
]  # fmt: skip
WHY_COLUMNS = [
    EXCLUDED, RANK, SCORE, PRED, LOWER, UPPER, S.RESTS_ON, S.P_FAST, S.P_BAND_GAP,
    OUT_OF_DOMAIN, S.E_HULL, S.STABILITY_METHOD, S.HULL_WARNING, S.BAND_GAP, S.BAND_GAP_SD,
    S.BAND_GAP_METHOD, SUPPLY_RISK, SUPPLY_DRIVER, COST, LI_FRACTION, PARETO, S.BVSE_E3D,
    S.BVSE_METHOD,
]  # fmt: skip


def _why(row: Mapping, score: str, terms: list[str], n_ranked: int) -> str:
    """The main criteria values behind a row's place, or the filter that removed it."""
    if row.get(EXCLUDED):
        return f"excluded: {row[EXCLUDED]}"
    parts = [
        f"rank {int(row[RANK])}/{n_ranked} by score {row[SCORE]:.2f} ({score}"
        + "".join(f" {t}" if t.startswith("x ") else f" - {t}" for t in terms)
        + ")",
        f"log10 sigma {row[PRED]:.2f} [{row[LOWER]:.2f}, {row[UPPER]:.2f}]",
    ]
    if isinstance(row.get(S.RESTS_ON), str) and row[S.RESTS_ON]:
        parts.append(f"rests on {row[S.RESTS_ON]}")
    p_fast = S.as_float(row.get(S.P_FAST))
    if math.isfinite(p_fast):
        parts.append(f"P(fast) {p_fast:.2f}")
    p_gap = S.as_float(row.get(S.P_BAND_GAP))
    if math.isfinite(p_gap) and p_gap < 1:
        parts.append(f"P(gap above the minimum) {p_gap:.2f}")
    if bool(row.get(OUT_OF_DOMAIN)):
        parts.append("outside training domain")
    parts.append(_e_hull_text(row))
    gap, gap_sd = S.as_float(row.get(S.BAND_GAP)), S.as_float(row.get(S.BAND_GAP_SD))
    if math.isfinite(gap):
        spread = f" +- {gap_sd:.2f}" if math.isfinite(gap_sd) and gap_sd > 0 else ""
        method = row.get(S.BAND_GAP_METHOD) or "source"
        parts.append(f"gap {gap:.2f}{spread} eV ({method})")
    for col, label, fmt in (
        (SUPPLY_RISK, "supply risk", "{:.2f}"),
        (COST, "cost", "{:.0f} USD/kg"),
        (LI_FRACTION, "Li fraction", "{:.2f}"),
    ):
        value = S.as_float(row.get(col))
        if math.isfinite(value):
            text = fmt.format(value)
            if col == SUPPLY_RISK and row.get(SUPPLY_DRIVER):
                text += f" (mostly {row[SUPPLY_DRIVER]})"
            parts.append(f"{label} {text}")
    parts.append(_barrier_text(row))
    if bool(row.get(PARETO)):
        parts.append("Pareto-optimal")
    return "; ".join(p for p in parts if p)


def _e_hull_text(row: Mapping) -> str:
    e_hull, method = S.as_float(row.get(S.E_HULL)), row.get(S.STABILITY_METHOD)
    warning = row.get(S.HULL_WARNING)
    if math.isfinite(e_hull):
        lacks = f"; its hull lacks: {warning}" if isinstance(warning, str) and warning else ""
        return f"E_hull {e_hull:.3f} eV/atom ({method or 'source'}{lacks})"
    return f"E_hull unknown ({method})" if method else "E_hull unknown"


def _barrier_text(row: Mapping) -> str:
    barrier, method = S.as_float(row.get(S.BVSE_E3D)), row.get(S.BVSE_METHOD)
    if math.isfinite(barrier):
        return f"BVSE 3-D Li barrier {barrier:.2f} eV ({method})"
    if isinstance(method, str) and method and not method.startswith("not checked"):
        return f"BVSE: {method}" if method.startswith("none") else f"BVSE: no 3-D path ({method})"
    return ""
