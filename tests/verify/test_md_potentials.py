"""The potential registry (miscreen.potentials) and relaxation with any of its potentials."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from miscreen.errors import UserError
from miscreen.potentials import POTENTIALS, get_potential
from miscreen.verify.md_relax import relax


def li2o(a: float = 4.70) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), ["Li", "O"], [[0.25] * 3, [0] * 3])


def test_an_unknown_potential_is_a_user_error_listing_the_names():
    with pytest.raises(UserError) as err:
        get_potential("mace-mp-0")
    for name in ("chgnet", "sevennet-0", "sevennet-l3i5"):
        assert name in str(err.value)


@pytest.mark.parametrize("name", sorted(POTENTIALS))
def test_every_potential_names_its_package_version_and_model_and_gives_forces_and_stress(name):
    pot = get_potential(name)
    assert pot.name == name
    package, _, model = pot.version.partition(", model ")
    assert package.split()[0] in ("chgnet", "sevenn") and package.split()[1][0].isdigit()
    assert model.startswith(pot.model)
    atoms = li2o().to_ase_atoms()
    atoms.rattle(0.05, seed=3)
    atoms.calc = pot.calculator("cpu")
    assert np.isfinite(atoms.get_potential_energy())
    assert atoms.get_forces().shape == (len(atoms), 3)
    assert np.abs(atoms.get_forces()).max() > 1e-3  # rattled: not at a minimum
    assert atoms.get_stress().shape == (6,)


def test_the_potentials_differ():
    """Each name reaches its own weights (not one model under five names)."""
    atoms = li2o().to_ase_atoms()
    energies = set()
    for name in POTENTIALS:
        atoms.calc = get_potential(name).calculator("cpu")
        energies.add(round(float(atoms.get_potential_energy()), 4))
    assert len(energies) == len(POTENTIALS)


@pytest.mark.parametrize("name", ["chgnet", "sevennet-0"])
def test_relaxation_at_fixed_cell_keeps_the_lattice_and_a_free_one_moves_it(name):
    s = li2o(4.90)  # 4 % larger than Li2O's lattice: a free cell shrinks
    s.perturb(0.05, min_distance=0.0)
    fixed = relax(s, fmax=0.05, steps=60, potential=name, relax_cell=False)
    assert np.allclose(fixed.structure.lattice.matrix, s.lattice.matrix, atol=1e-8)
    assert fixed.max_force_ev_a < 0.2
    free = relax(s, fmax=0.05, steps=200, potential=name)
    assert free.structure.volume < 0.97 * s.volume
    assert np.isfinite(free.energy_ev_per_atom) and free.steps > 0
