"""Relaxation of a simulation cell with CHGNet (positions and cell) before its MD."""

from __future__ import annotations

import contextlib
import io
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from pymatgen.core import Structure

from miscreen.store.structure_json import structure_from_dict
from miscreen.potentials import calculator


@dataclass(frozen=True)
class Relaxed:
    """A relaxed cell, its energy and how far the relaxation got."""

    structure: Structure
    energy_ev_per_atom: float
    max_force_ev_a: float
    steps: int
    converged: bool

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "structure": self.structure.as_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Relaxed:
        return cls(**{**d, "structure": structure_from_dict(d["structure"])})


def relax(
    structure: Structure, fmax: float = 0.05, steps: int = 300, device: str = "cpu"
) -> Relaxed:
    """Relax positions and cell with CHGNet (FIRE, Frechet cell filter)."""
    from chgnet.model import StructOptimizer

    with contextlib.redirect_stdout(io.StringIO()):
        opt = StructOptimizer(model=calculator(device))
        out = opt.relax(
            structure, fmax=fmax, steps=steps, relax_cell=True, verbose=False, assign_magmoms=False
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
