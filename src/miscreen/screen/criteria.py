"""Screening criteria beyond conductivity: element supply risk and cost, Li content, cell
size, and the Pareto front over conductivity, stability and supply risk.

Element data (both shipped with pymatgen, read from its package files, never edited):

- Supply risk: Herfindahl-Hirschman indices of production and reserves per element
  (``pymatgen/analysis/hhi_data.csv``; M. W. Gaultois et al., "Data-Driven Review of
  Thermoelectric Materials: Performance and Resource Considerations", Chem. Mater. 25,
  2911 (2013), from USGS 2011 data). HHI runs from 0 (dispersed) to 10,000 (one country).
  A compound's index is the weight-fraction mean of its elements', as in
  ``pymatgen.analysis.hhi``; ``supply_risk`` is the production HHI / 10,000 (0..1).
- Cost: element prices in USD/kg (``pymatgen/analysis/costdb_elements.csv``; Wolfram Alpha
  and Wikipedia, September 2013). ``cost_usd_per_kg`` is the weight-fraction mean: a
  raw-element lower bound, not a synthesis cost.

Elements missing from a table (e.g. H has no HHI) are left out of that mean and named in
``element_data_missing``, so a gap in the data is visible rather than silently zero.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Composition

from miscreen import schema as S

log = logging.getLogger(__name__)

SUPPLY_RISK = "supply_risk"
HHI_PRODUCTION = "hhi_production"
HHI_RESERVE = "hhi_reserve"
SUPPLY_DRIVER = "supply_risk_driver"
COST = "cost_usd_per_kg"
DATA_MISSING = "element_data_missing"
LI_FRACTION = "li_fraction"
NSITES = "nsites"
PARETO = "pareto_optimal"

HHI_MAX = 10_000.0
ELEMENT_DATA_SOURCES = {
    "hhi": "M. W. Gaultois et al., Chem. Mater. 25, 2911 (2013); pymatgen/analysis/hhi_data.csv",
    "cost": "Wolfram Alpha / Wikipedia element prices (2013); "
    "pymatgen/analysis/costdb_elements.csv",
}


def _pymatgen_analysis_dir() -> Path:
    from pymatgen.analysis import hhi

    return Path(hhi.__file__).parent


@lru_cache(maxsize=1)
def element_hhi() -> dict[str, tuple[float, float]]:
    """Element -> (production HHI, reserve HHI) from pymatgen's Gaultois et al. table."""
    out: dict[str, tuple[float, float]] = {}
    path = _pymatgen_analysis_dir() / "hhi_data.csv"
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            symbol, production, reserve = line.split(",")[:3]
            out[symbol.strip()] = (float(production), float(reserve))
    return out


@lru_cache(maxsize=1)
def element_cost() -> dict[str, float]:
    """Element -> price in USD/kg from pymatgen's element cost table (single elements only)."""
    out: dict[str, float] = {}
    path = _pymatgen_analysis_dir() / "costdb_elements.csv"
    with path.open(encoding="utf-8") as fh:
        for row in csv.reader(fh, quotechar="|"):
            if row and row[0].isalpha() and len(Composition(row[0]).elements) == 1:
                out[Composition(row[0]).elements[0].symbol] = float(row[1])
    return out


def supply_metrics(composition: str) -> dict[str, object]:
    """Supply risk, HHIs, the element driving the risk, cost and missing data for a formula."""
    comp = Composition(composition).element_composition
    hhi, cost = element_hhi(), element_cost()
    masses = {el.symbol: float(el.atomic_mass) * amount for el, amount in comp.items()}
    total = sum(masses.values())
    weights = {e: m / total for e, m in masses.items()}
    known = {e: w for e, w in weights.items() if e in hhi}
    priced = {e: w for e, w in weights.items() if e in cost}
    missing = sorted((set(weights) - set(known)) | (set(weights) - set(priced)))
    out: dict[str, object] = {
        HHI_PRODUCTION: _weighted({e: hhi[e][0] for e in known}, known),
        HHI_RESERVE: _weighted({e: hhi[e][1] for e in known}, known),
        COST: _weighted({e: cost[e] for e in priced}, priced),
        DATA_MISSING: ",".join(missing),
        SUPPLY_DRIVER: max(known, key=lambda e: known[e] * hhi[e][0]) if known else "",
    }
    out[SUPPLY_RISK] = float(out[HHI_PRODUCTION]) / HHI_MAX  # type: ignore[arg-type]
    return out


def _weighted(values: Mapping[str, float], weights: Mapping[str, float]) -> float:
    total = sum(float(w) for w in weights.values())
    if total <= 0:
        return math.nan
    return sum(values[e] * float(w) for e, w in weights.items()) / total


def li_fraction(composition: str) -> float:
    """Atomic fraction of Li in a formula (0 when absent)."""
    return float(Composition(composition).get_atomic_fraction("Li"))


def site_count(structure: object, composition: object, z: object) -> float:
    """Sites in the cell: from the structure JSON when there is one, else atoms per formula
    unit x Z when Z is known, else NaN (unknown: a size filter then does not apply)."""
    if isinstance(structure, str) and structure:
        return float(len(json.loads(structure)["sites"]))
    try:
        zf = float(z)  # type: ignore[arg-type]
        return Composition(str(composition)).num_atoms * zf if math.isfinite(zf) else math.nan
    except (TypeError, ValueError):
        return math.nan


COMPOSITION_CRITERIA = (
    SUPPLY_RISK,
    HHI_PRODUCTION,
    HHI_RESERVE,
    COST,
    SUPPLY_DRIVER,
    DATA_MISSING,
    LI_FRACTION,
)


def add_criteria(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with Li fraction, site count, supply risk, HHIs and cost columns added.

    Columns already present are kept: batch workers add them chunk by chunk, so that
    ranking the merged shards does not redo them serially.
    """
    out = frame.copy()
    if not all(col in out for col in COMPOSITION_CRITERIA):
        out = _add_composition_criteria(out)
    if NSITES not in out:
        structures = out[S.STRUCTURE] if S.STRUCTURE in out else pd.Series(None, index=out.index)
        zs = out[S.Z] if S.Z in out else pd.Series(math.nan, index=out.index)
        out[NSITES] = [
            site_count(s, c, z) for s, c, z in zip(structures, out[S.COMPOSITION], zs, strict=True)
        ]
    return out


# what pymatgen raises for a formula it cannot read (AttributeError: unknown element
# symbols such as "Xx2"; ZeroDivisionError: all amounts zero, "Li0O0")
BAD_FORMULA_ERRORS = (ValueError, AttributeError, ZeroDivisionError)


def _add_composition_criteria(out: pd.DataFrame) -> pd.DataFrame:
    """Supply, cost and Li-fraction columns; a row whose formula pymatgen cannot read gets
    NaN and a warning naming its id (the filters also say so in ``excluded_reason``)."""
    metrics, fractions = [], []
    ids = out[S.ID] if S.ID in out else pd.Series(out.index, index=out.index)
    for rid, comp in zip(ids, out[S.COMPOSITION], strict=True):
        try:
            row_metrics, fraction = supply_metrics(str(comp)), li_fraction(str(comp))
        except BAD_FORMULA_ERRORS as exc:
            log.warning(
                "row %s: composition %r unreadable, supply risk and cost left empty (%s: %s)",
                rid,
                comp,
                type(exc).__name__,
                exc,
            )
            row_metrics, fraction = {}, math.nan
        metrics.append(row_metrics)  # one entry per row, even when only one call failed
        fractions.append(fraction)
    table = pd.DataFrame(metrics, index=out.index)
    for col in (SUPPLY_RISK, HHI_PRODUCTION, HHI_RESERVE, COST):
        out[col] = pd.to_numeric(table.get(col), errors="coerce") if col in table else math.nan
    for col in (SUPPLY_DRIVER, DATA_MISSING):
        out[col] = table[col].fillna("") if col in table else ""
    out[LI_FRACTION] = fractions
    return out


def pareto_front(frame: pd.DataFrame, objectives: Mapping[str, str]) -> pd.Series:
    """True for rows no other row dominates. ``objectives`` maps column -> "max" | "min".

    A missing value counts as the worst possible, so a row is never on the front for a
    criterion it has no value for (e.g. stability unknown).
    """
    if frame.empty:
        return pd.Series(dtype=bool, index=frame.index)
    cols = []
    for col, sense in objectives.items():
        if sense not in ("max", "min"):
            raise ValueError(f"objective {col!r}: sense must be 'max' or 'min', got {sense!r}")
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(float)
        values = values if sense == "max" else -values
        cols.append(np.where(np.isnan(values), -np.inf, values))
    pts = np.column_stack(cols)  # larger is better in every column
    # Sweep in lexicographically descending order: a row can only be dominated by rows before
    # it, and it suffices to compare with the front found so far (memory O(front), not O(n^2)).
    order = np.lexsort(pts.T[::-1])[::-1]
    on_front = np.zeros(len(pts), dtype=bool)
    front = np.empty((0, pts.shape[1]))
    for i in order:
        p = pts[i]
        if len(front) and ((front >= p).all(axis=1) & (front > p).any(axis=1)).any():
            continue
        on_front[i] = True
        front = np.vstack([front, p])
    return pd.Series(on_front, index=frame.index)


PARETO_OBJECTIVES = {
    "predicted_log10_sigma": "max",
    S.E_HULL: "min",
    SUPPLY_RISK: "min",
}
