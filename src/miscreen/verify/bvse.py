"""Bond-valence site energy (BVSE) Li-ion percolation barriers, seconds per structure.

The method is softBV's (Chen, Wong & Adams, Acta Cryst. B 75, 18 (2019)) as implemented by
``bvlain`` (Dembitskiy et al., https://github.com/dembart/BVlain): a Li+ test ion is placed
on a grid over the cell with every Li removed; its energy is a Morse bond-valence term to
each anion plus a screened Coulomb repulsion from each cation. The 1-D/2-D/3-D barrier is
the lowest energy above the grid minimum at which the region below it percolates through
the crystal in 1, 2 or 3 independent directions.

The force-field parameters, covalent radii and potential functions are bvlain's own (its
``data/`` tables and ``BVSEPotential``). The grid and the percolation analysis are written
here, because bvlain takes ordered structures only: each framework species contributes in
proportion to its site occupancy (mean-field), so disordered structures, the normal case
for solid electrolytes, need no ordering step. On bvlain's own grid the energies agree
with bvlain's to ~2 meV and its published LiFePO4 barriers are reproduced (tests); on the
periodic grid used here (bvlain's repeats the boundary planes) barriers differ from
bvlain's by grid sampling only (median 0.02 eV, max 0.06 eV: ``benchmarks/bvse.py``).

Defaults: bvlain's (0.2 A grid, f = 0.74, ASE covalent radii, 10 eV search window, 0.01 eV
bisection), with an 8 A pair cutoff instead of bvlain's "10 A but 100 nearest neighbours".

This module runs one structure (:func:`bvse_barriers`) and a table of records
(:func:`barrier_table`, in this process or on ``jobs`` worker processes). The steps live
beside it: ``bvse_params`` (bvlain's parameters per framework species), ``bvse_oxidation``
(oxidation states), ``bvse_grid`` (the site energy grid) and ``bvse_percolation`` (the
barriers of a grid).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pymatgen.core import Composition, Structure
from threadpoolctl import threadpool_limits

from miscreen import schema as S
from miscreen.fetch.parsing import structure_from_json
from miscreen.fetch.records import reason_of
from miscreen.verify.bvse_grid import R_CUT_A, RESOLUTION_A, site_energy_grid
from miscreen.verify.bvse_oxidation import with_oxidation_states
from miscreen.verify.bvse_params import SCREENING, BVSEError, BVSETimeout
from miscreen.verify.bvse_percolation import ENCUT_EV, percolation_barriers

__all__ = [
    "BVSE_COLUMNS",
    "BVSE_E1D",
    "BVSE_E2D",
    "BVSE_E3D",
    "BVSE_METHOD",
    "BVSE_OXIDATION",
    "ENCUT_EV",
    "METHOD_OCCUPANCY",
    "METHOD_ORDERED",
    "METHOD_ORDERED_FRAMEWORK",
    "RESOLUTION_A",
    "R_CUT_A",
    "SCREENING",
    "TIME_LIMIT_S",
    "BVSEError",
    "BVSETimeout",
    "BarrierResult",
    "barrier_table",
    "bvse_barriers",
    "disorder_method",
]

STAGE = "verify"

# Output columns of barrier_table (index: schema.ID).
BVSE_E1D = "bvse_e1d_ev"
BVSE_E2D = "bvse_e2d_ev"
BVSE_E3D = S.BVSE_E3D  # the screen stage reads these two
BVSE_METHOD = S.BVSE_METHOD
BVSE_OXIDATION = "bvse_oxidation"
BVSE_COLUMNS = (BVSE_E1D, BVSE_E2D, BVSE_E3D, BVSE_METHOD, BVSE_OXIDATION)

# How disorder was handled (BarrierResult.method / BVSE_METHOD).
METHOD_ORDERED = "ordered"
METHOD_ORDERED_FRAMEWORK = "ordered framework"  # only Li sites partially occupied: exact
METHOD_OCCUPANCY = "occupancy-weighted"  # framework species weighted by site occupancy

TIME_LIMIT_S = 60.0


@dataclass(frozen=True)
class BarrierResult:
    """Percolation barriers in eV (NaN: no percolating path below ``ENCUT_EV``)."""

    e_1d: float
    e_2d: float
    e_3d: float
    method: str
    oxidation: str
    seconds: float

    def as_row(self) -> dict[str, object]:
        return {
            BVSE_E1D: self.e_1d,
            BVSE_E2D: self.e_2d,
            BVSE_E3D: self.e_3d,
            BVSE_METHOD: self.method,
            BVSE_OXIDATION: self.oxidation,
        }


def disorder_method(structure: Structure) -> str:
    """``ordered``, ``ordered framework`` (only Li sites disordered) or ``occupancy-weighted``."""
    if structure.is_ordered:
        return METHOD_ORDERED
    for site in structure:
        other = [occ for sp, occ in site.species.items() if sp.symbol != S.MOBILE_ION]
        if other and (len(site.species) > 1 or abs(other[0] - 1.0) > 1e-6):
            return METHOD_OCCUPANCY
    return METHOD_ORDERED_FRAMEWORK


def bvse_barriers(
    structure: Structure,
    *,
    composition: Composition | str | None = None,
    resolution: float = RESOLUTION_A,
    r_cut: float = R_CUT_A,
    encut: float = ENCUT_EV,
    screening: float = SCREENING,
    softbv_radii: bool = False,
    time_limit_s: float | None = None,
) -> BarrierResult:
    """BVSE Li+ percolation barriers of one structure (ordered or disordered).

    ``composition``: the material's composition, a fallback for charge balance when the
    structure's own cannot be balanced (e.g. no Li positions). ``softbv_radii``: softBV's
    covalent radii in the Coulomb screening instead of ASE's (bvlain's
    ``use_softbv_covalent_radii``). Raises :class:`BVSEError` for structures that cannot
    be treated and :class:`BVSETimeout` past ``time_limit_s`` (checked between chunks of
    work). Runs on one thread (BLAS included).
    """
    start = time.monotonic()
    deadline = None if time_limit_s is None else start + time_limit_s
    comp = Composition(composition) if isinstance(composition, str) else composition
    if not any(
        S.MOBILE_ION in {el.symbol for el in c.elements}
        for c in (structure.composition, comp)
        if c is not None
    ):
        raise BVSEError("no Li in the structure or its composition")
    method = disorder_method(structure)
    with threadpool_limits(limits=1):
        decorated, oxidation = with_oxidation_states(structure, comp)
        energy = site_energy_grid(
            decorated,
            resolution=resolution,
            r_cut=r_cut,
            screening=screening,
            softbv_radii=softbv_radii,
            deadline=deadline,
        )
        e1, e2, e3 = percolation_barriers(energy, encut=encut, deadline=deadline)
    return BarrierResult(e1, e2, e3, method, oxidation, time.monotonic() - start)


def barrier_table(
    records: pd.DataFrame, time_limit_s: float = TIME_LIMIT_S, *, jobs: int = 1, **options: Any
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """BVSE barriers for every record -> (table indexed by ``id``, failures).

    ``records`` has ``id``, ``source`` and ``structure`` (JSON of ``Structure.as_dict()`` or
    missing), and optionally ``composition`` (charge-balance fallback). A row that
    cannot be treated (no structure, unreadable JSON, no Li, missing parameters, over
    ``time_limit_s`` seconds for one structure) becomes a failure row with the reason; the
    others are unaffected. ``jobs``: worker processes (joblib's loky pool, one thread each;
    1: in this process); rows and failures keep the records' order whatever ``jobs``.
    ``options`` go to :func:`bvse_barriers`.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    n = len(records)
    ids = records[S.ID].astype(str).tolist()
    sources = records[S.SOURCE].tolist() if S.SOURCE in records else [""] * n
    texts = records[S.STRUCTURE].tolist() if S.STRUCTURE in records else [None] * n
    comps = records[S.COMPOSITION].tolist() if S.COMPOSITION in records else [None] * n
    tasks = [
        (rid, "" if pd.isna(source) else str(source), text, comp)
        for rid, source, text, comp in zip(ids, sources, texts, comps, strict=True)
    ]
    if jobs == 1 or n < 2:
        outcomes = [_barrier_row(*task, time_limit_s, options) for task in tasks]
    else:
        from joblib import Parallel, delayed

        # loky's pool as the featurize stage uses it, so its warm workers are reused;
        # bvse_barriers holds each to one thread
        parallel = Parallel(n_jobs=min(jobs, n), backend="loky")
        outcomes = parallel(delayed(_barrier_row)(*task, time_limit_s, options) for task in tasks)
    rows = [row for row, failure in outcomes if row is not None]
    failures = [failure for row, failure in outcomes if failure is not None]
    table = pd.DataFrame(rows, columns=[S.ID, *BVSE_COLUMNS]).set_index(S.ID)
    for col in (BVSE_E1D, BVSE_E2D, BVSE_E3D):
        table[col] = table[col].astype(float)
    failure_table = (
        pd.DataFrame(failures, columns=list(S.FAILURE_COLUMNS)) if failures else S.empty_failures()
    )
    return table, failure_table


def _barrier_row(
    rid: str,
    source: str,
    text: object,
    composition: object,
    time_limit_s: float,
    options: dict[str, Any],
) -> tuple[dict[str, object] | None, dict[str, str] | None]:
    """One record -> (table row, None) or (None, failure row); never raises."""
    if not isinstance(text, str) or not text.strip():
        return None, S.failure(rid, source, STAGE, "no structure: BVSE needs positions")
    try:
        structure = structure_from_json(text)
    except Exception as exc:  # malformed JSON or dict: say so, keep going
        return None, S.failure(rid, source, STAGE, f"unreadable structure JSON: {exc}")
    try:
        result = bvse_barriers(
            structure,
            composition=composition if isinstance(composition, str) and composition else None,
            time_limit_s=time_limit_s,
            **options,
        )
    except BVSETimeout:
        reason = f"BVSE exceeded the per-structure time limit of {time_limit_s:g} s"
        return None, S.failure(rid, source, STAGE, reason)
    except Exception as exc:  # one odd structure must not lose the others' barriers
        return None, S.failure(rid, source, STAGE, f"BVSE failed: {reason_of(exc)}")
    return {S.ID: rid, **result.as_row()}, None
