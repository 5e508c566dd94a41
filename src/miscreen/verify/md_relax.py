"""Relaxation of a simulation cell with a machine-learned potential before its MD.

Every potential relaxes through :func:`miscreen.potentials.minimize` (ASE's FIRE on a
``FrechetCellFilter``, the optimizer and filter CHGNet's own ``StructOptimizer`` uses), as the
generation stage's candidates do. With ``relax_cell=False`` only the positions move, at the
given cell (the experimental lattice).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from pymatgen.core import Structure

from miscreen.potentials import LEGACY_POTENTIAL, get_potential, minimize
from miscreen.store.structure_json import structure_from_dict
from miscreen.verify.md_protocol import MD_POTENTIAL, MDError


@dataclass(frozen=True)
class Relaxed:
    """A relaxed cell, its energy, how far the relaxation got, with which potential and
    whether the cell moved (False: positions only, at the given lattice)."""

    structure: Structure
    energy_ev_per_atom: float
    max_force_ev_a: float
    steps: int
    converged: bool
    potential: str = LEGACY_POTENTIAL  # relaxed.json files older than the registry: CHGNet
    potential_version: str = ""
    relax_cell: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "structure": self.structure.as_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Relaxed:
        return cls(**{**d, "structure": structure_from_dict(d["structure"])})


def relax(
    structure: Structure,
    fmax: float = 0.05,
    steps: int = 300,
    device: str = "cpu",
    potential: str = MD_POTENTIAL,
    relax_cell: bool = True,
) -> Relaxed:
    """Relax positions (and the cell unless ``relax_cell`` is False) with ``potential``
    (:func:`miscreen.potentials.minimize`: FIRE, Frechet cell filter when the cell moves)."""
    pot = get_potential(potential)
    done = minimize(structure, pot.calculator(device), fmax, steps, relax_cell=relax_cell)
    if math.isnan(done.energy_ev_per_atom):
        raise MDError(f"the {pot.name} relaxation {done.stopped}: no cell to run MD in")
    return Relaxed(
        structure=done.structure,
        energy_ev_per_atom=done.energy_ev_per_atom,
        max_force_ev_a=done.max_force_ev_a,
        steps=done.steps,
        converged=done.converged,
        potential=pot.name,
        potential_version=pot.version,
        relax_cell=relax_cell,
    )
