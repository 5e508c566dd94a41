"""Column names shared by every stage: the stages meet here, not by importing each other.

A *records* table has one row per material (training entry or candidate):

- ``id``, ``source`` (where it came from), ``formula`` (reduced formula),
- ``composition`` (a formula pymatgen can parse), ``structure`` (JSON of
  ``Structure.as_dict()`` or missing),
- ``spacegroup_number`` and lattice ``a b c alpha beta gamma`` and ``z`` (formula units per
  cell) where known,
- labelled tables also carry ``log10_sigma``, ``censored``, ``family``, ``doi``.

A *failures* table has ``id``, ``source``, ``stage``, ``reason``.
"""

from __future__ import annotations

import pandas as pd

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
FAMILY = "family"
DOI = "doi"
E_HULL = "e_above_hull"
BAND_GAP = "band_gap"

RECORD_COLUMNS = (ID, SOURCE, FORMULA, COMPOSITION, STRUCTURE, SPACEGROUP, *LATTICE, Z)
FAILURE_COLUMNS = (ID, SOURCE, "stage", "reason")


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
