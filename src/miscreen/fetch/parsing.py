"""Parsing structures and formulas from text, and the checks that keep absurd, impossible or
hostile input out of the pipeline (each raises ``ValueError`` saying what is wrong).

Structures in JSON are read as data by :func:`structure_from_json` and
:func:`structure_from_dict` (defined in :mod:`miscreen.store.structure_json`, below fetch in
the layers, and re-exported here): lattice, species, coordinates, labels and plain JSON
properties are built from the dict, never by pymatgen's ``MontyDecoder``, which imports
whatever module a ``{"@module", "@class"}`` pair names. A property holding such a pair (or
``@callable``) refuses the structure with a reason; a ``@module``/``@class`` on the
structure, lattice, site or species must name pymatgen's own class. Local files, Materials
Project documents, the pymatgen examples, stored structures (re-checked when a store is a
candidate source) and verify read structures through them.

Documented limits (far beyond any real solid electrolyte, so only broken input trips them):

- formulas: at most ``MAX_FORMULA_CHARS`` characters; every amount finite and within
  [``MIN_AMOUNT``, ``MAX_AMOUNT``]; every element written in the formula present in what
  pymatgen read (``Li0O`` is not O); numbers and missing-value markers (``NaN``, ``None``)
  are not formulas, although pymatgen reads ``NaN`` as sodium nitride;
- JSON (a JSONL line, a stored structure, a Materials Project structure, an OPTIMADE
  entry): at most ``MAX_JSON_CHARS`` characters (a longer JSONL line is skipped unread),
  nesting at most ``MAX_JSON_DEPTH`` deep, no list or object over ``MAX_JSON_ITEMS``
  entries, at most ``MAX_JSON_VALUES`` values in all, counted before anything is built;
- cells (:func:`check_cell`, also applied before featurization): at most ``MAX_SITES``
  sites (a structure dict with more is refused before its sites are built), finite lattice
  and coordinates, a volume per site within [``MIN_VOLUME_PER_SITE``,
  ``MAX_VOLUME_PER_SITE``] and a Cartesian bounding box of the cell per site at most
  ``MAX_BOX_PER_SITE`` (the neighbour search's memory grows with the box: a 4-site cell
  with a = b = 10^4 A took 0.9 GB);
- CIFs (``miscreen.fetch.cif_files``): at most ``MAX_CIF_BYTES`` characters and
  ``MAX_CIF_EXPANSION`` atom positions before symmetry merging (atom rows times the longest
  list under any key pymatgen may read symmetry operations from, times magnetic centerings;
  pymatgen's expansion time grows with its square); every ``_atom_site_occupancy`` in
  (0, ``1 + OCCUPANCY_TOLERANCE``] (pymatgen silently drops a site of occupancy 0 or less);
- sites (:func:`check_structure`, applied when loading local files): no site occupied more
  than ``1 + OCCUPANCY_TOLERANCE``, and no two sites closer than ``OVERLAP_DISTANCE``
  whose occupancies together exceed that (two Li atoms on one position).

Measured on the real data (OBELiX's 321 CIFs, 11,081 Materials Project structures): volume
per site 5.6-202 A^3, bounding box per site at most 524 A^3, at most 352 sites, no
over-occupied pair closer than 0.3 A, occupancies in (0, 1]; JSONL lines of the snapshots
at most 54,356 characters, 4,644 values, 7 levels deep, 288 entries in one list.
"""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
from pymatgen.core import Composition, Element, Structure

# the structure JSON decoder lives with the store (below fetch in the layers); re-exported
from miscreen.store.structure_json import (
    MAX_JSON_CHARS,
    MAX_JSON_DEPTH,
    MAX_JSON_ITEMS,
    MAX_JSON_VALUES,
    MAX_SITES,
    check_json_size,
    structure_from_dict,
    structure_from_json,
    structure_to_json,
)

__all__ = [
    "MAX_AMOUNT",
    "MAX_BOX_PER_SITE",
    "MAX_CIF_BYTES",
    "MAX_CIF_EXPANSION",
    "MAX_FORMULA_CHARS",
    "MAX_JSON_CHARS",
    "MAX_JSON_DEPTH",
    "MAX_JSON_ITEMS",
    "MAX_JSON_VALUES",
    "MAX_SITES",
    "MAX_VOLUME_PER_SITE",
    "MIN_AMOUNT",
    "MIN_VOLUME_PER_SITE",
    "OCCUPANCY_TOLERANCE",
    "OVERLAP_DISTANCE",
    "check_cell",
    "check_json_size",
    "check_structure",
    "composition_mismatch",
    "parse_composition",
    "structure_from_dict",
    "structure_from_json",
    "structure_to_json",
]

MAX_FORMULA_CHARS = 200
MIN_AMOUNT = 1e-6
MAX_AMOUNT = 1e4
MIN_VOLUME_PER_SITE = 2.0  # A^3
MAX_VOLUME_PER_SITE = 1000.0  # A^3
MAX_BOX_PER_SITE = 5000.0  # A^3
OCCUPANCY_TOLERANCE = 0.05  # as CifParser's occupancy_tolerance=1.05
OVERLAP_DISTANCE = 0.3  # A
MAX_CIF_BYTES = 5_000_000
# atom rows x symmetry operations: pymatgen expands every row by every operation before
# merging duplicates, in time growing with the square (9,600: 11 s; 48,000: 200 s). OBELiX's
# CIFs reach 1,344.
MAX_CIF_EXPANSION = 12_000
_MISSING = {"nan", "none", "null", "n/a", "nat", "<na>", "-", "?", "inf", "infinity"}
_TOKEN = re.compile(r"([A-Z][a-z]*)")
_ISOTOPES = {"D": "H", "T": "H"}  # pymatgen reads deuterium and tritium as hydrogen


def parse_composition(formula: object) -> Composition:
    """Parse a formula; raise ``ValueError`` naming the formula and what is wrong with it
    (unparsable, not elements, no atoms, absurd amounts, or read as something else)."""
    text = str(formula).strip()
    shown = text if len(text) <= 60 else text[:57] + "..."
    if not text:
        raise ValueError("empty composition")
    if len(text) > MAX_FORMULA_CHARS:
        raise ValueError(
            f"composition {shown!r} is {len(text)} characters long (limit {MAX_FORMULA_CHARS})"
        )
    if text.lower() in _MISSING or _is_numeric_text(text):
        raise ValueError(f"composition {text!r} is a number or a missing-value marker")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            comp = Composition(text)
    except Exception as exc:
        raise ValueError(f"unparsable composition {shown!r}: {exc}") from exc
    if not comp.valid:
        raise ValueError(f"composition {shown!r} contains symbols that are not elements")
    amounts = list(comp.values())
    if not amounts or not all(math.isfinite(a) for a in amounts):
        bad = "no atoms" if not amounts else "an amount that is not a finite number"
        raise ValueError(f"composition {shown!r} has {bad}")
    if min(amounts) < MIN_AMOUNT or max(amounts) > MAX_AMOUNT:
        raise ValueError(
            f"composition {shown!r} has an amount outside [{MIN_AMOUNT:g}, {MAX_AMOUNT:g}] "
            f"({min(amounts):g} to {max(amounts):g}); write it per formula unit"
        )
    read = {el.symbol for el in comp.elements}
    for token in _TOKEN.findall(text):
        symbol = _ISOTOPES.get(token, token)
        if Element.is_valid_symbol(symbol) and symbol not in read:
            raise ValueError(
                f"composition {shown!r}: {token} is written but has amount 0 (pymatgen reads "
                f"it as {comp.formula!r}); remove the element or give its amount"
            )
    return comp


def _is_numeric_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def check_cell(structure: Structure, max_sites: int = MAX_SITES) -> None:
    """Refuse a structure whose size or cell is absurd (see the module's limits)."""
    n = len(structure)
    if n == 0:
        raise ValueError("structure has no sites")
    if n > max_sites:
        raise ValueError(f"structure has {n} sites (> {max_sites}); too large")
    matrix = np.asarray(structure.lattice.matrix, dtype=float)
    if not np.isfinite(matrix).all() or not np.isfinite(structure.frac_coords).all():
        raise ValueError("structure has a lattice or coordinates that are not finite numbers")
    volume = abs(float(np.linalg.det(matrix)))
    per_site = volume / n
    if not MIN_VOLUME_PER_SITE <= per_site <= MAX_VOLUME_PER_SITE:
        raise ValueError(
            f"cell volume {volume:.4g} A^3 is {per_site:.4g} A^3 per site, outside "
            f"[{MIN_VOLUME_PER_SITE:g}, {MAX_VOLUME_PER_SITE:g}] (lattice a b c = "
            f"{', '.join(f'{x:.4g}' for x in structure.lattice.abc)} A)"
        )
    box = float(np.prod(np.abs(matrix).sum(axis=0)))
    if box / n > MAX_BOX_PER_SITE:
        raise ValueError(
            f"cell spans {box:.4g} A^3 ({box / n:.4g} A^3 per site, limit "
            f"{MAX_BOX_PER_SITE:g}): lattice vectors too long for the number of sites"
        )


def check_structure(structure: Structure, max_sites: int = MAX_SITES) -> None:
    """:func:`check_cell`, then refuse over-occupied or overlapping sites."""
    check_cell(structure, max_sites)
    occ = np.array([site.species.num_atoms for site in structure], dtype=float)
    limit = 1.0 + OCCUPANCY_TOLERANCE
    if occ.size and occ.max() > limit:
        i = int(occ.argmax())
        raise ValueError(f"site {i} ({structure[i].species}) is occupied {occ[i]:.3g} > 1")
    center, neighbor, _, dist = structure.get_neighbor_list(OVERLAP_DISTANCE)
    over = occ[center] + occ[neighbor] > limit
    if over.any():
        k = int(np.flatnonzero(over)[0])
        i, j = int(center[k]), int(neighbor[k])
        what = "its own periodic image" if i == j else f"site {j} ({structure[j].species})"
        raise ValueError(
            f"site {i} ({structure[i].species}) overlaps {what}: {dist[k]:.3g} A apart "
            f"(< {OVERLAP_DISTANCE} A) with a combined occupancy of {occ[i] + occ[j]:.3g} > 1"
        )


def composition_mismatch(given: Composition, read: Composition, tol: float = 0.02) -> str:
    """'' when ``read`` (e.g. a CIF's) has the composition ``given`` (atomic fractions
    within ``tol``), else the elements whose fractions differ, in words."""
    a, b = given.fractional_composition, read.fractional_composition
    off = [
        f"{el} {a[el]:.3f} vs {b[el]:.3f}"
        for el in sorted({*a.elements, *b.elements}, key=str)
        if abs(a[el] - b[el]) > tol
    ]
    return ", ".join(off)
