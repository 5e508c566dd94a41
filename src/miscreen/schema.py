"""Column names shared by every stage: the stages meet here, not by importing each other.

A *records* table has one row per material (training entry or candidate):

- ``id``, ``source`` (where it came from), ``formula`` (reduced formula),
- ``composition`` (a formula pymatgen can parse), ``structure`` (JSON of
  ``Structure.as_dict()`` or missing),
- ``spacegroup_number`` and lattice ``a b c alpha beta gamma`` and ``z`` (formula units per
  cell) where known,
- labelled tables also carry ``log10_sigma``, ``censored``, ``family``, ``doi``.

A *predictions* table adds :data:`PREDICTION_COLUMNS`; a ranked *candidates* table adds
:data:`RANK`, :data:`SCORE`, :data:`EXCLUDED` and :data:`WHY`.

A *failures* table has ``id``, ``source``, ``stage``, ``reason``.
"""

from __future__ import annotations

import math

import pandas as pd

MOBILE_ION = "Li"  # the ion whose conductivity miscreen screens for

ID = "id"
SOURCE = "source"
FORMULA = "formula"
COMPOSITION = "composition"
STRUCTURE = "structure"
SPACEGROUP = "spacegroup_number"
LATTICE = ("a", "b", "c", "alpha", "beta", "gamma")
Z = "z"
TARGET = "log10_sigma"
CENSORED = "censored"
CENSOR_BOUND = "censor_bound"
FAMILY = "family"
DOI = "doi"
E_HULL = "e_above_hull"
BAND_GAP = "band_gap"
REFRACTIVE_INDEX = "refractive_index_n"  # matbench-dielectric carries it
# estimates where the source gives none (screen.stability, screen.band_gap, screen.redox)
STABILITY_METHOD = "stability_method"  # source, matched:<id>, chgnet_hull
HULL_PHASES = "hull_phases"  # ids of the reference phases that built the hull
HULL_WARNING = "hull_warning"  # phases a chemist would expect that the hull lacks
BAND_GAP_METHOD = "band_gap_method"  # source, composition_model, refractive_index, combined
BAND_GAP_SD = "band_gap_sd"  # eV, 0 for a source value
P_BAND_GAP = "p_band_gap"  # P(band gap >= screen.min_band_gap)
REDOX_ACTIVE = "redox_active_elements"

RECORD_COLUMNS = (ID, SOURCE, FORMULA, COMPOSITION, STRUCTURE, SPACEGROUP, *LATTICE, Z)
FAILURE_COLUMNS = (ID, SOURCE, "stage", "reason")

# predictions (screen.predict_frame and the routing of rows to models)
PRED = "predicted_log10_sigma"
LOWER = "lower"
UPPER = "upper"
UNCERTAINTY = "uncertainty"
DOMAIN_DISTANCE = "domain_distance"
OUT_OF_DOMAIN = "out_of_domain"
MODEL = "model"
HAS_STRUCTURE = "has_structure"
P_FAST = "p_fast"  # probability that sigma(300 K) >= the fast threshold
RESTS_ON = "rests_on"  # the training rows the forest's prediction rests on most, weighted
FAST_LOG10_SIGMA = -4.0  # the default threshold: 1e-4 S/cm
PREDICTION_COLUMNS = (
    PRED, LOWER, UPPER, UNCERTAINTY, P_FAST, DOMAIN_DISTANCE, OUT_OF_DOMAIN, MODEL, RESTS_ON,
)  # fmt: skip

# physics checks (verify stage): bond-valence site energy Li migration barrier, eV
BVSE_E3D = "bvse_e3d_ev"
BVSE_METHOD = "bvse_method"

# ranking (screen.rank_candidates)
RANK = "rank"
SCORE = "score"
EXCLUDED = "excluded_reason"
WHY = "why"

# test predictions: what an evaluation keeps per labelled row
TEST_PREDICTION_COLUMNS = (
    ID, FORMULA, FAMILY, TARGET, CENSORED, CENSOR_BOUND, HAS_STRUCTURE, MODEL, PRED, LOWER,
    UPPER, UNCERTAINTY, P_FAST, OUT_OF_DOMAIN,
)  # fmt: skip


def empty_failures() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in FAILURE_COLUMNS})


def failure(id_: str, source: str, stage: str, reason: str) -> dict[str, str]:
    return {ID: str(id_), SOURCE: source, "stage": stage, "reason": reason}


def ensure_record_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Return ``df`` with every record column present (missing ones filled with NA)."""
    out = df.copy()
    for col in RECORD_COLUMNS:
        if col not in out.columns:
            out[col] = pd.NA
    return out


def has_structure(records: pd.DataFrame) -> pd.Series:
    """True where a row carries a structure (a non-empty ``structure`` value)."""
    if STRUCTURE not in records:
        return pd.Series(False, index=records.index)
    col = records[STRUCTURE]
    return col.notna() & (col.astype(str) != "")


def as_float(value: object) -> float:
    """``value`` as a float, or NaN when it is missing or not a number."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def records(frame: pd.DataFrame) -> list[dict]:
    """The rows as dicts of Python values, as ``frame.to_dict("records")`` gives them (pd.NA
    as None), faster: each column is converted at once, not each cell."""
    names = list(frame.columns)
    if not names:
        return [{} for _ in range(len(frame))]
    columns = [_python_values(frame.iloc[:, j]) for j in range(len(names))]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def _python_values(column: pd.Series) -> list:
    values = column.tolist()
    if column.dtype == object or isinstance(column.dtype, pd.api.extensions.ExtensionDtype):
        return [None if v is pd.NA else v for v in values]
    return values


def concat(*frames: pd.DataFrame) -> pd.DataFrame:
    """Concatenate the non-empty frames; all empty: the first (so its columns survive)."""
    parts = [df for df in frames if not df.empty]
    return pd.concat(parts, ignore_index=True) if parts else frames[0]
