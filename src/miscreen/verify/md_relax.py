"""Relaxation of a simulation cell with a machine-learned potential before its MD.

CHGNet relaxes through its own ``StructOptimizer``; every other potential through ASE's FIRE
on a ``FrechetCellFilter`` (the same optimizer and filter StructOptimizer uses). With
``relax_cell=False`` only the positions move, at the given cell (the experimental lattice).
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from pymatgen.core import Structure

from miscreen.potentials import DEFAULT_POTENTIAL, get_potential
from miscreen.store.structure_json import structure_from_dict


@dataclass(frozen=True)
class Relaxed:
    """A relaxed cell, its energy, how far the relaxation got, with which potential and
    whether the cell moved (False: positions only, at the given lattice)."""

    structure: Structure
    energy_ev_per_atom: float
    max_force_ev_a: float
    steps: int
    converged: bool
    potential: str = DEFAULT_POTENTIAL  # relaxed.json files older than the registry: CHGNet
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
    potential: str = DEFAULT_POTENTIAL,
    relax_cell: bool = True,
) -> Relaxed:
    """Relax positions (and the cell unless ``relax_cell`` is False) with ``potential``
    (FIRE; Frechet cell filter when the cell moves)."""
    pot = get_potential(potential)
    run = _relax_chgnet if potential == "chgnet" else _relax_ase
    result = run(structure, fmax, steps, pot.calculator(device), relax_cell)
    return replace(result, potential=pot.name, potential_version=pot.version, relax_cell=relax_cell)


def _relax_chgnet(
    structure: Structure, fmax: float, steps: int, calc: Any, relax_cell: bool
) -> Relaxed:
    from chgnet.model import StructOptimizer

    with contextlib.redirect_stdout(io.StringIO()):
        opt = StructOptimizer(model=calc)
        out = opt.relax(
            structure,
            fmax=fmax,
            steps=steps,
            relax_cell=relax_cell,
            verbose=False,
            assign_magmoms=False,
        )
    traj = out["trajectory"]
    final = out["final_structure"]
    for key in list(final.site_properties):
        final.remove_site_property(key)
    max_force = float(np.linalg.norm(np.asarray(traj.forces[-1]), axis=1).max())
    n_steps = max(0, len(traj) - 2)  # the observer records the start and once more at the end
    return Relaxed(
        structure=final,
        energy_ev_per_atom=float(traj.energies[-1]) / len(final),
        max_force_ev_a=max_force,
        steps=n_steps,
        converged=max_force <= fmax * 1.0001,
    )


def _relax_ase(
    structure: Structure, fmax: float, steps: int, calc: Any, relax_cell: bool
) -> Relaxed:
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(structure.copy())
    atoms.calc = calc
    target = FrechetCellFilter(atoms) if relax_cell else atoms
    opt = FIRE(target, logfile=None)
    opt.run(fmax=fmax, steps=steps)
    forces = atoms.get_forces()
    energy = float(atoms.get_potential_energy())
    max_force = float(np.linalg.norm(forces, axis=1).max())
    if relax_cell:  # the filter's generalized forces include the stress
        converged = bool(np.linalg.norm(target.get_forces(), axis=1).max() <= fmax * 1.0001)
    else:
        converged = max_force <= fmax * 1.0001
    atoms.calc = None
    final = AseAtomsAdaptor.get_structure(atoms)
    for key in list(final.site_properties):
        final.remove_site_property(key)
    return Relaxed(
        structure=final,
        energy_ev_per_atom=energy / len(final),
        max_force_ev_a=max_force,
        steps=int(opt.nsteps),
        converged=converged,
    )
