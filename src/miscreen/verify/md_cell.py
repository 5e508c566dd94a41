"""The simulation cell of a candidate: ordered (:mod:`miscreen.verify.md_ordering`), made
into the protocol's supercell and right-handed, with its provenance (:class:`Prepared`)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from pymatgen.core import Structure

from miscreen.potentials import right_handed
from miscreen.schema import MOBILE_ION
from miscreen.store.structure_json import structure_from_dict
from miscreen.verify.md_ordering import order_structure
from miscreen.verify.md_protocol import MDError, MDProtocol


def widths(structure: Structure) -> np.ndarray:
    """Perpendicular widths of the cell (distances between opposite faces), in A."""
    m = structure.lattice.matrix
    vol = abs(np.linalg.det(m))
    return np.array(
        [vol / np.linalg.norm(np.cross(m[(i + 1) % 3], m[(i + 2) % 3])) for i in (0, 1, 2)]
    )


def supercell_scaling(structure: Structure, protocol: MDProtocol) -> tuple[int, int, int]:
    """Diagonal supercell for the protocol: with ``min_width_a``, the smallest one whose
    every width reaches it; with ``max_atoms``, the one of at most that many atoms whose
    narrowest width is largest (the cell itself if it is already bigger)."""
    w = widths(structure)
    n = len(structure)
    if protocol.min_width_a is not None:
        return tuple(max(1, math.ceil(protocol.min_width_a / x - 1e-9)) for x in w)  # type: ignore[return-value]
    if protocol.max_atoms is None:
        return (1, 1, 1)
    best, best_key = (1, 1, 1), (float(min(w)), -n)
    cap = max(1, protocol.max_atoms // n)
    for a in range(1, cap + 1):
        for b in range(1, cap // a + 1):
            for c in range(1, cap // (a * b) + 1):
                key = (float(min(w * (a, b, c))), -n * a * b * c)
                if key > best_key:
                    best, best_key = (a, b, c), key
    return best


def make_supercell(structure: Structure, protocol: MDProtocol) -> Structure:
    scaling = supercell_scaling(structure, protocol)
    return structure * scaling if scaling != (1, 1, 1) else structure.copy()


@dataclass(frozen=True)
class Prepared:
    """A candidate's simulation cell before relaxation, with its provenance and, when the
    run ranked it, the ML prediction (log10 sigma, lower, upper) to compare with."""

    id: str
    formula: str
    structure: Structure
    ordering: str
    oxidation_states: dict[str, float]
    orderings: float
    scaling: tuple[int, int, int]
    source: str = ""
    ml: tuple[float, float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["structure"] = self.structure.as_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Prepared:
        ml = tuple(d["ml"]) if d.get("ml") is not None else None
        return cls(
            **{
                **d,
                "structure": structure_from_dict(d["structure"]),
                "scaling": tuple(d["scaling"]),
                "ml": ml,
            }
        )


def prepare(
    candidate_id: str,
    structure: Structure,
    protocol: MDProtocol,
    seed: int = 0,
    source: str = "",
    ml: tuple[float, float, float] | None = None,
) -> Prepared:
    """Order, then make the protocol's supercell; ``MDError`` says why a cell cannot be used."""
    if MOBILE_ION not in {el.symbol for el in structure.composition.elements}:
        raise MDError(f"{structure.composition.reduced_formula} has no {MOBILE_ION}")
    ordered = order_structure(structure, seed=seed)
    scaling = supercell_scaling(ordered.structure, protocol)
    cell = right_handed(make_supercell(ordered.structure, protocol))
    return Prepared(
        id=str(candidate_id),
        formula=cell.composition.reduced_formula,  # what is simulated (ordered, rounded)
        structure=cell,
        ordering=ordered.method,
        oxidation_states=ordered.oxidation_states,
        orderings=ordered.orderings,
        scaling=scaling,
        source=source,
        ml=ml,
    )
