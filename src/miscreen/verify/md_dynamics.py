"""The MD loop of one task: ASE's Bussi stochastic-velocity-rescaling thermostat
(canonical, and a global thermostat that disturbs the dynamics, hence diffusion, far less
than Langevin friction) driving the task's potential (:mod:`miscreen.potentials`),
resumable from the task folder's checkpoint (:mod:`miscreen.verify.md_tasks`).

The centre of mass is held still (ASE's ``FixCom``), so the atoms have 3N - 3 kinetic degrees
of freedom, and the thermostat and the recorded temperatures count exactly those. Without it
ASE counts 3N: the thermostat then holds the kinetic energy at 3N/2 k_B T spread over the
3N - 3 degrees of freedom that move, and the atoms run 3N / (3N - 3) too hot (2 % in a 50-atom
cell, 3 % in 32 atoms), while the temperature recorded with the same 3N reads exactly T."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Structure

from miscreen.potentials import get_potential, set_threads
from miscreen.verify.md_protocol import MDError, MDProtocol
from miscreen.verify.md_tasks import (
    MDTask,
    chunk_files,
    ensure_relaxed,
    read_checkpoint,
    read_task,
    task_progress,
    write_checkpoint,
    write_chunk,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskStatus:
    """Where a call to :func:`run_md_task` left its task."""

    step: int
    total_steps: int
    wall_s: float  # spent in this call
    s_per_step: float | None

    @property
    def done(self) -> bool:
        return self.step >= self.total_steps


def restore(
    task_dir: Path, structure: Structure, task: MDTask
) -> tuple[Any, np.random.Generator, int]:
    """(atoms with positions and momenta, generator, step) from the checkpoint, or a fresh
    start with Maxwell-Boltzmann velocities (its step-0 checkpoint written at once)."""
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(structure)
    rng = np.random.default_rng(task.rng_seed)
    ckpt = read_checkpoint(task_dir)
    if ckpt is None:
        MaxwellBoltzmannDistribution(atoms, temperature_K=task.temperature_k, rng=rng)
        Stationary(atoms)
        for _last, path in chunk_files(task_dir):  # a run killed before its first checkpoint
            path.unlink()
        write_checkpoint(task_dir, 0, atoms, rng)
        return atoms, rng, 0
    if ckpt["numbers"] != atoms.get_atomic_numbers().tolist():
        raise MDError(f"{task_dir}: checkpoint atoms differ from the task's structure")
    atoms.set_cell(np.array(ckpt["cell"]))
    atoms.set_positions(np.array(ckpt["positions"]))
    atoms.set_momenta(np.array(ckpt["momenta"]), apply_constraint=False)
    rng.bit_generator.state = ckpt["rng"]
    step = int(ckpt["step"])
    for last, path in chunk_files(task_dir):  # written after the checkpoint, before a kill
        if last > step:
            path.unlink()
    return atoms, rng, step


def thermostat(
    atoms: Any, temperature_k: float, protocol: MDProtocol, rng: np.random.Generator
) -> Any:
    """ASE's Bussi NVT dynamics for the protocol's step and time constant, the centre of mass
    held still so that the atoms' 3N - 3 degrees of freedom are thermostatted at
    ``temperature_k`` (any momentum of the centre of mass is removed)."""
    from ase import units
    from ase.constraints import FixCom
    from ase.md.bussi import Bussi

    atoms.set_constraint(FixCom())
    atoms.set_momenta(atoms.get_momenta())  # through the constraint: no centre-of-mass drift
    return Bussi(
        atoms,
        timestep=protocol.time_step_fs * units.fs,
        temperature_K=temperature_k,
        taut=protocol.thermostat_tau_fs * units.fs,
        rng=rng,
    )


def run_md_task(
    task_dir: Path,
    device: str = "cpu",
    threads: int | None = 1,
    time_limit_s: float | None = None,
    progress: bool = True,
) -> TaskStatus:
    """Run (or resume) one task to its total steps.

    ``time_limit_s`` stops cleanly at the first checkpoint past that wall time (for batch
    jobs with a time limit: resubmit to continue). ``threads`` sets torch's threads (None:
    leave them).
    """
    task_dir = Path(task_dir)
    task = read_task(task_dir)
    p = task.protocol
    total = p.total_steps
    if threads is not None:
        set_threads(threads)
    if task_progress(task_dir) >= total:
        return TaskStatus(total, total, 0.0, None)
    task.check_potential(task_dir)
    structure = ensure_relaxed(task_dir.parent, p, device, task.potential, task.cell).structure
    atoms, rng, step = restore(task_dir, structure, task)
    atoms.calc = get_potential(task.potential).calculator(device)
    dyn = thermostat(atoms, task.temperature_k, p, rng)
    start_step, t0 = step, time.perf_counter()
    frames: list[tuple] = []
    forces = None
    label = f"{task.candidate_id} {task.temperature_k:g} K ({task.potential})"
    while step < total:
        forces = dyn.step(forces)
        step += 1
        if step % p.save_every == 0:
            frames.append(
                (step, atoms.get_positions(), atoms.get_temperature(), atoms.get_potential_energy())
            )
        if step % p.checkpoint_every == 0 or step == total:
            write_chunk(task_dir, step, frames)
            write_checkpoint(task_dir, step, atoms, rng)
            frames = []
            elapsed = time.perf_counter() - t0
            rate = elapsed / (step - start_step)
            if progress:
                log.info(
                    "MD %s: step %d/%d, %.2f s/step, %.0f s left",
                    label,
                    step,
                    total,
                    rate,
                    rate * (total - step),
                )
            if time_limit_s is not None and elapsed > time_limit_s and step < total:
                break
    elapsed = time.perf_counter() - t0
    done = step - start_step
    return TaskStatus(step, total, elapsed, elapsed / done if done else None)
