"""The NVT thermostat of verify md holds the atoms at the target temperature (issue 25)."""

from __future__ import annotations

import numpy as np
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

from miscreen.verify.md_dynamics import thermostat
from miscreen.verify.md_protocol import MDProtocol

PROTOCOL = MDProtocol(
    name="test",
    temperatures_k=(300.0, 400.0),
    equilibration_ps=0.2,
    production_ps=8.0,
    time_step_fs=2.0,
    thermostat_tau_fs=20.0,
)


def internal_temperature(atoms) -> float:
    """Kinetic temperature of the motion relative to the centre of mass: 3N - 3 degrees of
    freedom, counted here independently of ASE."""
    m = atoms.get_masses()
    v = atoms.get_velocities()
    v = v - (m @ v) / m.sum()
    return float((m[:, None] * v**2).sum() / ((3 * len(atoms) - 3) * units.kB))


def test_the_thermostat_holds_the_motion_of_the_atoms_at_the_target_temperature():
    # Two Cu atoms (EMT): 3 degrees of freedom move once the centre of mass is still. A
    # thermostat that counts 3N = 6 holds them at 2 T (the old code: 623 K mean, 49 K spread
    # over 8 seeds of 4 ps at 300 K); counting 3N - 3 gives T (300 K, 24 K spread over 4 ps,
    # so about 17 K, 6 %, over the 8 ps here). 25 % is more than 4 spreads from both.
    target = 300.0
    atoms = bulk("Cu", "fcc", a=3.61).repeat((2, 1, 1))
    atoms.calc = EMT()
    rng = np.random.default_rng(7)
    MaxwellBoltzmannDistribution(atoms, temperature_K=target, rng=rng)
    Stationary(atoms)
    dyn = thermostat(atoms, target, PROTOCOL, rng)
    internal, recorded = [], []
    forces = None
    for step in range(PROTOCOL.total_steps):
        forces = dyn.step(forces)
        if step >= PROTOCOL.equilibration_steps:
            internal.append(internal_temperature(atoms))
            recorded.append(atoms.get_temperature())
    assert abs(np.mean(internal) / target - 1) < 0.25
    # the temperature verify md records counts the same degrees of freedom
    np.testing.assert_allclose(recorded, internal, rtol=1e-6)
    # and the centre of mass stays still
    assert np.abs(atoms.get_momenta().sum(axis=0)).max() < 1e-8
