"""Pick the next batch of experiments from a scored pool: diverse, never a measured row,
each with its prediction, interval, acquisition value and a sentence saying why."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm

from miscreen import schema as S
from miscreen.suggest.acquisition import DESCRIPTIONS, KAPPA, ranking, score
from miscreen.suggest.prior import (
    ANIONS,
    BARRIER,
    COLD_START_LOG10,
    LI_FRACTION,
    POLARIZABILITY,
    PRIOR_WEIGHTED,
    cold_start,
    prior_components,
    prior_score,
    weight_by_prior,
)
from miscreen.train.splits import chemical_system, element_fractions

MEAN = S.PRED  # the screen stage's prediction column
SD = "predicted_sd"  # spread of the model's prediction, log10 S/cm
LOWER = S.LOWER
UPPER = S.UPPER
MEASURED = "measured"  # optional bool column of the pool: True rows are never suggested
CHEMSYS = "chemsys"
RANK = S.RANK
ACQUISITION = "acquisition"
ACQ_VALUE = "acquisition_value"
WHY = S.WHY
NEAREST_ID = "nearest_measured_id"
NEAREST_COMPOSITION = "nearest_measured_composition"
NEAREST_SIGMA = "nearest_measured_log10_sigma"
NEAREST_DISTANCE = "nearest_measured_distance"

DIVERSITY = ("chemsys", "none")
PRIOR = "prior"  # the acquisition column's value for picks made by the cold start
UNWEIGHTED = "acquisition_value_without_prior"  # mli/ei before the prior's weight
PRIOR_VALUE = "prior_score"  # the label-free prior (0-1) that weighed the acquisition


def chemical_systems(compositions: Iterable[object], ids: Sequence[object] | None = None) -> list:
    """Chemical system of every composition; ``ValueError`` naming the row that fails."""
    out = []
    for i, comp in enumerate(compositions):
        try:
            out.append(chemical_system(str(comp)))
        except ValueError as exc:
            where = f"id {ids[i]!r}" if ids is not None else f"row {i}"
            raise ValueError(f"{where}: {exc}; fix or drop that row") from None
    return out


def select_diverse(order: Sequence[int], groups: Sequence[object] | None, k: int) -> list[int]:
    """The first ``k`` positions of ``order`` taking at most one per group (all of them
    when ``groups`` is None). Fewer than ``k`` when the groups run out."""
    if groups is None:
        return [int(i) for i in order[:k]]
    picked: list[int] = []
    seen: set[object] = set()
    for i in order:
        g = groups[int(i)]
        if g in seen:
            continue
        seen.add(g)
        picked.append(int(i))
        if len(picked) == k:
            break
    return picked


def suggest_batch(
    pool: pd.DataFrame,
    k: int,
    acquisition: str,
    best_measured: float,
    diversity: str = "chemsys",
    seed: int = 0,
    *,
    measured: pd.DataFrame | Iterable[str] | None = None,
    kappa: float = KAPPA,
    interval: float = 0.8,
    physics_prior: bool = False,
) -> pd.DataFrame:
    """The ``k`` pool rows that ``acquisition`` rates highest, best first.

    ``pool`` needs ``id``, ``composition``, ``predicted_log10_sigma`` and ``predicted_sd``;
    ``lower``/``upper`` are kept when present (e.g. the screen's conformal interval),
    else they are the central ``interval`` of N(mean, sd**2). Rows flagged in a ``measured``
    column, and ids in ``measured`` (ids, or a table with ``id``, ``composition`` and
    ``log10_sigma``), are never suggested; a table also adds the nearest measured material
    to every suggestion. ``diversity="chemsys"`` takes at most one row per chemical system.
    With ``physics_prior``, while ``best_measured`` is below :data:`COLD_START_LOG10` (no
    fast conductor measured yet, so the model has never seen one) the pool is ranked by the
    label-free prior of :mod:`miscreen.suggest.prior` instead (a ``barrier`` column, eV, is
    used where present). After the cold start, ``physics_prior`` multiplies the scores of
    ``mli`` and ``ei`` by that prior (:func:`~miscreen.suggest.prior.weight_by_prior`; the
    simulated OBELiX campaigns found 5 of the top 5 % sooner with it, issue 23); the picks
    then carry the score without it and the prior. Returns fewer than ``k`` rows when the
    eligible pool (or its systems) runs out.
    """
    if int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if diversity not in DIVERSITY:
        raise ValueError(f"unknown diversity {diversity!r}; choose one of {', '.join(DIVERSITY)}")
    missing = [c for c in (S.ID, S.COMPOSITION, MEAN, SD) if c not in pool.columns]
    if missing:
        raise ValueError(f"pool lacks column(s) {missing}; it needs id, composition, {MEAN}, {SD}")
    if not 0 < interval < 1:
        raise ValueError(f"interval must lie in (0, 1), got {interval}")

    measured_table = measured if isinstance(measured, pd.DataFrame) else None
    if measured_table is not None:
        measured_ids = set(measured_table[S.ID].astype(str))
    else:
        measured_ids = {str(m) for m in (() if measured is None else measured)}
    keep = ~pool[S.ID].astype(str).isin(measured_ids)
    if MEASURED in pool.columns:
        keep &= ~pool[MEASURED].fillna(False).astype(bool)
    cand = pool.loc[keep].reset_index(drop=True)
    if cand[S.ID].astype(str).duplicated().any():
        dup = cand.loc[cand[S.ID].astype(str).duplicated(), S.ID].iloc[0]
        raise ValueError(f"pool holds id {dup!r} more than once")

    mu = cand[MEAN].to_numpy(dtype=float)
    sd = cand[SD].to_numpy(dtype=float)
    bad = ~np.isfinite(mu) | ~np.isfinite(sd)
    if bad.any():
        raise ValueError(
            f"id {cand.loc[bad, S.ID].iloc[0]!r}: prediction or sd is missing; "
            "predict every pool row first"
        )
    rng = np.random.default_rng(seed)
    guided = physics_prior and cold_start(np.array([best_measured]), COLD_START_LOG10)
    weighted = physics_prior and not guided and acquisition in PRIOR_WEIGHTED
    components = pool_prior(cand) if guided or weighted else None
    prior = prior_score(components) if components is not None else np.full(len(cand), np.nan)
    if guided:
        values = unweighted = prior
    else:
        values = unweighted = score(acquisition, mu, sd, best_measured, rng, kappa=kappa)
        if weighted:
            values = weight_by_prior(acquisition, unweighted, prior)
    ids = cand[S.ID].astype(str).tolist()
    systems = chemical_systems(cand[S.COMPOSITION], ids)
    picked = select_diverse(
        ranking(values, mu), systems if diversity == "chemsys" else None, int(k)
    )

    out = cand.iloc[picked].reset_index(drop=True)
    out.insert(0, RANK, np.arange(1, len(out) + 1))
    out[CHEMSYS] = [systems[i] for i in picked]
    out[ACQUISITION] = PRIOR if guided else acquisition
    out[ACQ_VALUE] = values[picked]
    if weighted:
        out[UNWEIGHTED] = unweighted[picked]
        out[PRIOR_VALUE] = prior[picked]
    if components is not None:
        out[POLARIZABILITY] = components[POLARIZABILITY].to_numpy()[picked]
        out[LI_FRACTION] = components[LI_FRACTION].to_numpy()[picked]
        out[BARRIER] = components[BARRIER].to_numpy()[picked]
    if LOWER not in out.columns or UPPER not in out.columns:
        z = float(norm.ppf(0.5 + interval / 2))
        out[LOWER] = out[MEAN] - z * out[SD]
        out[UPPER] = out[MEAN] + z * out[SD]
    if measured_table is not None and len(measured_table) and len(out):
        out = pd.concat([out, nearest_measured(out, measured_table)], axis=1)
    out[WHY] = [
        _why(row, PRIOR if guided else acquisition, best_measured, diversity, kappa)
        for _, row in out.iterrows()
    ]
    return out


def pool_prior(cand: pd.DataFrame) -> pd.DataFrame:
    """The prior's components for the pool rows: a ``barrier`` column (eV) where the pool
    has one, else the screen's BVSE check (``bvse_e3d_ev``, the best rows only)."""
    column = next((c for c in (BARRIER, S.BVSE_E3D) if c in cand.columns), None)
    barriers = cand[column].to_numpy(dtype=float) if column else None
    return prior_components(cand[S.COMPOSITION], barriers)


def _why(row: pd.Series, acquisition: str, best: float, diversity: str, kappa: float) -> str:
    value = row[ACQ_VALUE]
    if acquisition == PRIOR:
        return _why_prior(row, best, diversity)
    raw = row[UNWEIGHTED] if UNWEIGHTED in row.index else value
    if acquisition == "mli":
        detail = f"P(log10 sigma > best measured {best:.2f}) = {raw:.2f}"
    elif acquisition == "ei":
        detail = f"expected gain over best measured {best:.2f} = {raw:.2f} decades"
    elif acquisition == "ucb":
        detail = f"mean + {kappa:g} sd = {value:.2f}"
    elif acquisition == "mu":
        detail = f"sd = {value:.2f} decades"
    else:
        detail = f"score {value:.2f}"
    if UNWEIGHTED in row.index:
        detail += f" x physics prior {row[PRIOR_VALUE]:.2f} ({_prior_parts(row)}) = {value:.2f}"
    text = (
        f"#{int(row[RANK])} by {acquisition} ({DESCRIPTIONS[acquisition]}): {detail}; "
        f"predicted log10 sigma {row[MEAN]:.2f} +/- {row[SD]:.2f} "
        f"[{row[LOWER]:.2f}, {row[UPPER]:.2f}]"
    )
    if diversity == "chemsys":
        text += f"; the batch's only pick in {row[CHEMSYS]}"
    if NEAREST_ID in row.index and pd.notna(row[NEAREST_ID]):
        text += (
            f"; nearest measured: {row[NEAREST_COMPOSITION]} ({row[NEAREST_ID]}, "
            f"log10 sigma {row[NEAREST_SIGMA]:.2f}, distance {row[NEAREST_DISTANCE]:.2f})"
        )
    return text


def _prior_parts(row: pd.Series) -> str:
    """The prior's known components of a pick, in words (a part it lacks is named so)."""
    pol = row[POLARIZABILITY]
    parts = [
        f"anion polarizability {pol:.2f} A^3"
        if pd.notna(pol)
        else "no anion polarizability (none of " + " ".join(ANIONS) + ")",
        f"Li fraction {row[LI_FRACTION]:.2f}",
    ]
    if BARRIER in row.index and pd.notna(row[BARRIER]):
        parts.append(f"BVSE barrier {row[BARRIER]:.2f} eV")
    return ", ".join(parts)


def _why_prior(row: pd.Series, best: float, diversity: str) -> str:
    text = (
        f"#{int(row[RANK])} by the physics prior (cold start: the best measured log10 sigma "
        f"{best:.2f} is below {COLD_START_LOG10:g}, so the model has never seen a fast "
        f"conductor): prior {row[ACQ_VALUE]:.2f} from {_prior_parts(row)}"
    )
    text += f"; the model predicts {row[MEAN]:.2f} +/- {row[SD]:.2f}"
    if diversity == "chemsys":
        text += f"; the batch's only pick in {row[CHEMSYS]}"
    if NEAREST_ID in row.index and pd.notna(row[NEAREST_ID]):
        text += f"; nearest measured: {row[NEAREST_COMPOSITION]} ({row[NEAREST_ID]})"
    return text


def nearest_measured(
    suggestions: pd.DataFrame,
    measured: pd.DataFrame,
    features: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """For every suggestion, the closest measured material, its log10 sigma and distance.

    Distance is half the L1 distance between element fractions (0: same composition,
    1: no element shared) or, given ``features`` indexed by id for both tables, the
    Euclidean distance between features standardised over the measured rows, divided by
    the square root of the feature count. ``measured`` needs ``id``, ``composition`` and
    ``log10_sigma``. The result shares ``suggestions``' index.
    """
    need = [c for c in (S.ID, S.COMPOSITION, S.TARGET) if c not in measured.columns]
    if need:
        raise ValueError(f"measured table lacks column(s) {need}")
    if len(measured) == 0:
        raise ValueError("no measured materials to compare with")
    if features is not None:
        sid = suggestions[S.ID].astype(str)
        mid = measured[S.ID].astype(str)
        absent = sorted(set(sid) - set(features.index) | set(mid) - set(features.index))
        if absent:
            raise ValueError(f"features lack id(s) {absent[:5]}")
        ref = features.loc[mid].to_numpy(dtype=float)
        qry = features.loc[sid].to_numpy(dtype=float)
        centre = np.nanmean(ref, axis=0)
        scale = np.nanstd(ref, axis=0)
        scale[~(scale > 0)] = 1.0
        ref = np.nan_to_num((ref - centre) / scale)
        qry = np.nan_to_num((qry - centre) / scale)
        dist = np.sqrt(((qry[:, None, :] - ref[None, :, :]) ** 2).mean(axis=2))
    else:
        frac = element_fractions(
            list(suggestions[S.COMPOSITION]) + list(measured[S.COMPOSITION])
        ).to_numpy()
        qry, ref = frac[: len(suggestions)], frac[len(suggestions) :]
        dist = 0.5 * np.abs(qry[:, None, :] - ref[None, :, :]).sum(axis=2)
    nearest = dist.argmin(axis=1)
    return pd.DataFrame(
        {
            NEAREST_ID: measured[S.ID].astype(str).to_numpy()[nearest],
            NEAREST_COMPOSITION: measured[S.COMPOSITION].astype(str).to_numpy()[nearest],
            NEAREST_SIGMA: measured[S.TARGET].to_numpy(dtype=float)[nearest],
            NEAREST_DISTANCE: dist[np.arange(len(nearest)), nearest],
        },
        index=suggestions.index,
    )
