"""Parsing structures from files and text, with failures reported rather than raised."""

from __future__ import annotations

import json
import warnings

from pymatgen.core import Composition, Structure
from pymatgen.io.cif import CifParser


def structure_from_cif_text(text: str) -> Structure:
    """Parse the first structure of a CIF (disorder kept as partial occupancies)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parser = CifParser.from_str(text, occupancy_tolerance=1.05)
        structures = parser.parse_structures(primitive=False)
    if not structures:
        raise ValueError("CIF holds no structure pymatgen can read")
    return structures[0]


def structure_to_json(structure: Structure) -> str:
    return json.dumps(structure.as_dict())


def structure_from_json(text: str) -> Structure:
    return Structure.from_dict(json.loads(text))


def parse_composition(formula: str) -> Composition:
    """Parse a formula; raise ``ValueError`` naming the formula when pymatgen cannot."""
    try:
        comp = Composition(str(formula))
    except Exception as exc:
        raise ValueError(f"unparsable composition {formula!r}: {exc}") from exc
    if not comp.valid:
        raise ValueError(f"composition {formula!r} contains symbols that are not elements")
    if comp.num_atoms <= 0:
        raise ValueError(f"composition {formula!r} has no atoms")
    return comp
