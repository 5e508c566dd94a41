"""Molecular dynamics with CHGNet (tier 2 of verify): prepare a candidate's cell, relax it,
and run one resumable NVT trajectory per temperature.

A candidate goes through :func:`order_structure` (disordered cells ordered by Ewald energy
with pymatgen's ``OrderDisorderedStructureTransformation``, oxidation states guessed on the
rounded composition, the enumeration capped), :func:`make_supercell` (the protocol's size
rule), :func:`relax` (``chgnet.model.StructOptimizer``, cell and positions) and, per
temperature, :func:`run_md_task`: ASE's Bussi stochastic-velocity-rescaling thermostat
(canonical, and a global thermostat that disturbs the dynamics, hence diffusion, far less
than Langevin friction) driving ``CHGNetCalculator``.

A task directory holds the task (``task.json``), its checkpoint (``checkpoint.json``: step,
positions, momenta and the random generator's state, all exact) and its trajectory as
chunks (``frames-<last step>.npz``: unwrapped Cartesian positions every ``save_every``
steps). A chunk is written before the checkpoint that follows it, both atomically, so a
task killed at any moment resumes from its last checkpoint and continues the very same
trajectory it would have run without the kill.

Diffusion analysis lives in :mod:`miscreen.verify.md_analysis`.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Composition, Lattice, Structure

from miscreen import atomic_io

log = logging.getLogger(__name__)

STAGE = "verify-md"
MOBILE = "Li"

# File names inside a candidate folder and a task folder (named once, here).
PREPARED_JSON = "prepared.json"
RELAXED_JSON = "relaxed.json"
TASK_JSON = "task.json"
CHECKPOINT_JSON = "checkpoint.json"
FRAMES_PREFIX = "frames-"
FRAMES_SUFFIX = ".npz"

# Ordering of disordered cells (pymatgen's transformation: about 5 million permutations a
# minute; above the cap, a random sample of orderings ranked by Ewald energy instead).
MAX_ORDERINGS = 5_000_000
RANDOM_ORDERINGS = 200
OCCUPANCY_TOLERANCE = 0.25  # a site group's total occupancy rounds to an integer within this
MAX_ORDER_MULTIPLIER = 4  # supercells tried to make every group's occupancy integral


class MDError(ValueError):
    """A candidate that cannot be simulated (ordering, charge balance, size); names why."""


@dataclass(frozen=True)
class MDProtocol:
    """How long, how hot and how big: everything a task needs besides its structure."""

    name: str
    temperatures_k: tuple[float, ...]
    equilibration_ps: float
    production_ps: float
    time_step_fs: float = 2.0
    save_every: int = 10  # steps between saved frames (20 fs at 2 fs)
    checkpoint_every: int = 250  # steps between checkpoints; a multiple of save_every
    max_atoms: int | None = None  # largest supercell allowed (None: no cap)
    min_width_a: float | None = None  # every perpendicular cell width at least this
    relax_fmax: float = 0.05  # eV/A
    relax_steps: int = 300
    thermostat_tau_fs: float = 100.0
    min_hops: int = 10  # fewer Li hops at a temperature -> its diffusivity is an upper bound
    low_statistics: bool = False  # results are marked as such in tables and the report

    def __post_init__(self) -> None:
        if self.checkpoint_every % self.save_every:
            raise ValueError("checkpoint_every must be a multiple of save_every")
        if len(self.temperatures_k) < 2:
            raise ValueError("an Arrhenius fit needs at least two temperatures")

    def steps(self, ps: float) -> int:
        """Steps in ``ps`` picoseconds, rounded up to a whole number of saved frames."""
        n = math.ceil(ps * 1000.0 / self.time_step_fs)
        return self.save_every * math.ceil(n / self.save_every)

    @property
    def equilibration_steps(self) -> int:
        return self.steps(self.equilibration_ps)

    @property
    def total_steps(self) -> int:
        return self.equilibration_steps + self.steps(self.production_ps)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MDProtocol:
        return cls(**{**d, "temperatures_k": tuple(d["temperatures_k"])})


# quick: a 2-core machine (three temperatures, ~50 atoms, a few ps); results are marked as
# low-statistics. standard: a cluster or GPU (five temperatures, 50 ps of production each,
# every cell width >= 10 A), in line with ab initio MD practice (Mo et al. 2012).
QUICK = MDProtocol(
    name="quick",
    temperatures_k=(800.0, 1000.0, 1200.0),
    equilibration_ps=1.0,
    production_ps=4.0,
    checkpoint_every=250,
    max_atoms=60,
    relax_steps=300,
    low_statistics=True,
)
STANDARD = MDProtocol(
    name="standard",
    temperatures_k=(600.0, 700.0, 800.0, 900.0, 1000.0),
    equilibration_ps=5.0,
    production_ps=50.0,
    checkpoint_every=1000,
    min_width_a=10.0,
    relax_steps=1000,
)
PROTOCOLS = {p.name: p for p in (QUICK, STANDARD)}


def get_protocol(name: str) -> MDProtocol:
    if name not in PROTOCOLS:
        raise ValueError(f"unknown MD protocol {name!r}; use one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


# ----------------------------------------------------------------------- preparation


@dataclass(frozen=True)
class Ordered:
    """An ordered cell and how it was obtained."""

    structure: Structure
    method: str  # "ordered" | "ewald" | "ewald (best of N random)"
    oxidation_states: dict[str, float]
    orderings: float  # number of orderings of the disordered sites (0 when ordered)


def _site_groups(structure: Structure) -> list[list[int]]:
    """Disordered sites grouped by identical species and occupancies (as pymatgen's
    transformation groups them without symmetry)."""
    groups: list[list[int]] = []
    exemplars: list[Composition] = []
    for i, site in enumerate(structure):
        if site.is_ordered:
            continue
        for g, sp in enumerate(exemplars):
            if site.species.almost_equals(sp):
                groups[g].append(i)
                break
        else:
            groups.append([i])
            exemplars.append(site.species)
    return groups


def _rounded_counts(structure: Structure, tol: float) -> tuple[Composition, float] | None:
    """(the composition after rounding each group's occupancy, log10 of the number of
    orderings), or None when some group's total is not within ``tol`` of an integer."""
    counts: dict[str, float] = {}
    log10_orderings = 0.0
    for site in structure:
        if site.is_ordered:
            el = next(iter(site.species)).symbol
            counts[el] = counts.get(el, 0) + 1
    for group in _site_groups(structure):
        total = sum((structure[i].species for i in group), Composition())
        filled = 0
        for sp, amount in total.items():
            if abs(amount - round(amount)) > tol:
                return None
            k = round(amount)
            counts[sp.symbol] = counts.get(sp.symbol, 0) + k
            # multinomial: choose k of the remaining sites for this species
            log10_orderings += _log10_binomial(len(group) - filled, k)
            filled += k
    return Composition(counts), log10_orderings


def _log10_binomial(n: int, k: int) -> float:
    if k < 0 or k > n:
        return 0.0
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)) / math.log(10)


def guess_oxidation_states(composition: Composition) -> dict[str, float]:
    """One charge-balanced oxidation state per element (pymatgen's most likely guess)."""
    guesses = composition.oxi_state_guesses(max_sites=-1)
    if not guesses:
        raise MDError(
            f"no charge-balanced oxidation states for {composition.reduced_formula}; "
            "cannot rank orderings by Ewald energy"
        )
    return {el: float(v) for el, v in guesses[0].items()}


def order_structure(
    structure: Structure,
    max_orderings: float = MAX_ORDERINGS,
    random_orderings: int = RANDOM_ORDERINGS,
    seed: int = 0,
) -> Ordered:
    """The lowest-Ewald-energy ordering of a disordered cell (the cell itself when ordered).

    Group occupancies are rounded as pymatgen's transformation rounds them (the smallest
    supercell, up to ``MAX_ORDER_MULTIPLIER`` along the shortest axis, in which they round
    within ``OCCUPANCY_TOLERANCE``); oxidation states are guessed on that composition. Above
    ``max_orderings`` orderings the enumeration is replaced by ``random_orderings`` random
    ones, ranked by Ewald energy.
    """
    from pymatgen.analysis.ewald import EwaldSummation
    from pymatgen.transformations.standard_transformations import (
        OrderDisorderedStructureTransformation as Order,
    )

    structure = structure.copy()
    structure.remove_oxidation_states()
    if structure.is_ordered:
        return Ordered(structure, "ordered", {}, 0.0)
    axis = int(np.argmin(structure.lattice.abc))
    for m in range(1, MAX_ORDER_MULTIPLIER + 1):
        scale = [1, 1, 1]
        scale[axis] = m
        cell = structure * scale if m > 1 else structure
        rounded = _rounded_counts(cell, OCCUPANCY_TOLERANCE)
        if rounded is not None:
            break
    else:
        raise MDError(
            f"site occupancies of {structure.composition.reduced_formula} do not add up to "
            f"whole atoms in cells up to {MAX_ORDER_MULTIPLIER}x the given one"
        )
    composition, log10_n = rounded
    oxi = guess_oxidation_states(composition)
    decorated = cell.copy()
    decorated.add_oxidation_state_by_element(oxi)
    if log10_n <= math.log10(max_orderings):
        best = Order(algo=Order.ALGO_FAST).apply_transformation(decorated)
        method = "ewald"
    else:
        np.random.seed(seed)  # pymatgen's random manipulations draw from numpy's global RNG
        sampled = Order(algo=Order.ALGO_RANDOM).apply_transformation(
            decorated, return_ranked_list=random_orderings
        )
        energies = [EwaldSummation(s["structure"]).total_energy for s in sampled]
        best = sampled[int(np.argmin(energies))]["structure"]
        method = f"ewald (best of {len(sampled)} random)"
    best = best.get_sorted_structure()
    best.remove_oxidation_states()
    return Ordered(best, method, oxi, 10.0**log10_n)


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


def right_handed(structure: Structure) -> Structure:
    """The same atoms in a right-handed cell (the third lattice vector and fractional
    coordinate negated when the determinant is negative). CHGNet computes its stress with
    the signed cell volume, so on a left-handed cell (pymatgen's own Li10GeP2S12.json is
    one) the stress has the wrong sign and a cell relaxation collapses the crystal."""
    m = structure.lattice.matrix
    if np.linalg.det(m) > 0:
        return structure.copy()
    flip = np.array([1.0, 1.0, -1.0])
    return Structure(
        Lattice(m * flip[:, None]),
        [site.species for site in structure],
        structure.frac_coords * flip,
        site_properties=structure.site_properties or None,
    )


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
                "structure": Structure.from_dict(d["structure"]),
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
    if MOBILE not in {el.symbol for el in structure.composition.elements}:
        raise MDError(f"{structure.composition.reduced_formula} has no {MOBILE}")
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


def write_prepared(candidate_dir: Path, prepared: Prepared) -> Path:
    return atomic_io.write_json(Path(candidate_dir) / PREPARED_JSON, prepared.to_dict())


def read_prepared(candidate_dir: Path) -> Prepared:
    return Prepared.from_dict(atomic_io.read_json(Path(candidate_dir) / PREPARED_JSON))


# ----------------------------------------------------------------------- CHGNet


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when a GPU is visible to torch, else ``cpu``."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@functools.lru_cache(maxsize=4)
def load_chgnet(device: str = "cpu") -> Any:
    """The pretrained CHGNet (weights ship in the wheel), loaded once per process."""
    from chgnet.model import CHGNet

    with contextlib.redirect_stdout(io.StringIO()):
        return CHGNet.load(verbose=False, use_device=device)


def calculator(device: str = "cpu") -> Any:
    from chgnet.model.dynamics import CHGNetCalculator

    with contextlib.redirect_stdout(io.StringIO()):  # it prints the device
        return CHGNetCalculator(model=load_chgnet(device), use_device=device)


def set_threads(threads: int) -> None:
    """Torch intra-op threads (one per task by default: tasks run side by side)."""
    import torch

    torch.set_num_threads(max(1, int(threads)))


@dataclass(frozen=True)
class Relaxed:
    structure: Structure
    energy_ev_per_atom: float
    max_force_ev_a: float
    steps: int
    converged: bool

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "structure": self.structure.as_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Relaxed:
        return cls(**{**d, "structure": Structure.from_dict(d["structure"])})


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


def read_relaxed(candidate_dir: Path) -> Relaxed | None:
    path = Path(candidate_dir) / RELAXED_JSON
    return Relaxed.from_dict(atomic_io.read_json(path)) if path.exists() else None


def ensure_relaxed(candidate_dir: Path, protocol: MDProtocol, device: str = "cpu") -> Relaxed:
    """The candidate's relaxed cell, relaxing (and saving) it the first time. Tasks of one
    candidate running at once may both relax it: same input, same result, atomic write."""
    done = read_relaxed(candidate_dir)
    if done is not None:
        return done
    prepared = read_prepared(candidate_dir)
    t0 = time.perf_counter()
    result = relax(prepared.structure, protocol.relax_fmax, protocol.relax_steps, device)
    log.info(
        "relaxed %s (%d atoms) in %d steps, %.0f s, max force %.3f eV/A%s",
        prepared.id,
        len(result.structure),
        result.steps,
        time.perf_counter() - t0,
        result.max_force_ev_a,
        "" if result.converged else " (not converged)",
    )
    atomic_io.write_json(Path(candidate_dir) / RELAXED_JSON, result.to_dict())
    return result


# ----------------------------------------------------------------------- MD tasks


@dataclass(frozen=True)
class MDTask:
    """One trajectory: a candidate at one temperature."""

    candidate_id: str
    temperature_k: float
    protocol: MDProtocol
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate_id": self.candidate_id,
            "temperature_k": self.temperature_k,
            "protocol": self.protocol.to_dict(),
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MDTask:
        return cls(
            d["candidate_id"],
            float(d["temperature_k"]),
            MDProtocol.from_dict(d["protocol"]),
            int(d["seed"]),
        )

    @property
    def rng_seed(self) -> list[int]:
        """Seed sequence entropy: the run seed and the temperature, so tasks differ."""
        return [int(self.seed), round(self.temperature_k * 1000)]


@dataclass(frozen=True)
class TaskStatus:
    step: int
    total_steps: int
    wall_s: float  # spent in this call
    s_per_step: float | None

    @property
    def done(self) -> bool:
        return self.step >= self.total_steps


def write_task(task_dir: Path, task: MDTask) -> Path:
    """Create a task folder inside its candidate's folder (whose relaxed cell it starts
    from); an existing task is kept as it is, so a re-plan never resets a trajectory."""
    path = Path(task_dir) / TASK_JSON
    if path.exists():
        old = MDTask.from_dict(atomic_io.read_json(path))
        if old != task:
            raise MDError(
                f"{task_dir} holds a different task ({old.protocol.name} protocol, "
                f"seed {old.seed}); remove it to start over"
            )
        return path
    return atomic_io.write_json(path, task.to_dict())


def read_task(task_dir: Path) -> MDTask:
    return MDTask.from_dict(atomic_io.read_json(Path(task_dir) / TASK_JSON))


def _chunk_path(task_dir: Path, last_step: int) -> Path:
    return Path(task_dir) / f"{FRAMES_PREFIX}{last_step:09d}{FRAMES_SUFFIX}"


def chunk_files(task_dir: Path) -> list[tuple[int, Path]]:
    """(last step, path) of every trajectory chunk, in order."""
    out = []
    for p in Path(task_dir).glob(f"{FRAMES_PREFIX}*{FRAMES_SUFFIX}"):
        stem = p.name[len(FRAMES_PREFIX) : -len(FRAMES_SUFFIX)]
        if stem.isdigit():
            out.append((int(stem), p))
    return sorted(out)


def read_checkpoint(task_dir: Path) -> dict[str, Any] | None:
    path = Path(task_dir) / CHECKPOINT_JSON
    return atomic_io.read_json(path) if path.exists() else None


def task_progress(task_dir: Path) -> int:
    """Steps done (by the last checkpoint); 0 for a task not started."""
    ckpt = read_checkpoint(task_dir)
    return int(ckpt["step"]) if ckpt else 0


@dataclass
class Trajectory:
    """Saved frames of one task: unwrapped Cartesian positions [frame, atom, xyz]."""

    steps: np.ndarray
    positions: np.ndarray
    temperature_k: np.ndarray
    potential_ev: np.ndarray


def read_trajectory(task_dir: Path, up_to_step: int | None = None) -> Trajectory:
    """Every saved frame, in order (only chunks up to ``up_to_step``; default: the last
    checkpoint, so a chunk left by a kill between chunk and checkpoint is ignored)."""
    limit = task_progress(task_dir) if up_to_step is None else up_to_step
    parts = [np.load(p) for last, p in chunk_files(task_dir) if last <= limit]
    if not parts:
        return Trajectory(np.zeros(0, int), np.zeros((0, 0, 3)), np.zeros(0), np.zeros(0))
    return Trajectory(
        np.concatenate([p["steps"] for p in parts]),
        np.concatenate([p["positions"] for p in parts]),
        np.concatenate([p["temperature_k"] for p in parts]),
        np.concatenate([p["potential_ev"] for p in parts]),
    )


def _write_chunk(task_dir: Path, last_step: int, frames: list[tuple]) -> None:
    with atomic_io.atomic_path(_chunk_path(task_dir, last_step)) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            steps=np.array([f[0] for f in frames], dtype=np.int64),
            positions=np.array([f[1] for f in frames], dtype=np.float64),
            temperature_k=np.array([f[2] for f in frames], dtype=np.float64),
            potential_ev=np.array([f[3] for f in frames], dtype=np.float64),
        )


def _checkpoint(task_dir: Path, step: int, atoms: Any, rng: np.random.Generator) -> None:
    """Exact state: JSON floats round-trip, and the generator's state is plain integers."""
    atomic_io.write_json(
        Path(task_dir) / CHECKPOINT_JSON,
        {
            "step": int(step),
            "positions": atoms.get_positions().tolist(),
            "momenta": atoms.get_momenta().tolist(),
            "cell": atoms.get_cell().tolist(),
            "numbers": atoms.get_atomic_numbers().tolist(),
            "rng": rng.bit_generator.state,
            "written_at": atomic_io.now_utc(),
        },
    )


def _restore(
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
        _checkpoint(task_dir, 0, atoms, rng)
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
    from ase import units
    from ase.md.bussi import Bussi

    task_dir = Path(task_dir)
    task = read_task(task_dir)
    p = task.protocol
    total = p.total_steps
    if threads is not None:
        set_threads(threads)
    if task_progress(task_dir) >= total:
        return TaskStatus(total, total, 0.0, None)
    structure = ensure_relaxed(task_dir.parent, p, device).structure
    atoms, rng, step = _restore(task_dir, structure, task)
    atoms.calc = calculator(device)
    dyn = Bussi(
        atoms,
        timestep=p.time_step_fs * units.fs,
        temperature_K=task.temperature_k,
        taut=p.thermostat_tau_fs * units.fs,
        rng=rng,
    )
    start_step, t0 = step, time.perf_counter()
    frames: list[tuple] = []
    forces = None
    label = f"{task.candidate_id} {task.temperature_k:g} K"
    while step < total:
        forces = dyn.step(forces)
        step += 1
        if step % p.save_every == 0:
            frames.append(
                (step, atoms.get_positions(), atoms.get_temperature(), atoms.get_potential_energy())
            )
        if step % p.checkpoint_every == 0 or step == total:
            _write_chunk(task_dir, step, frames)
            _checkpoint(task_dir, step, atoms, rng)
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


def default_threads() -> int:
    """Threads per task: ``SLURM_CPUS_PER_TASK`` in a SLURM job, else 1."""
    try:
        return max(1, int(os.environ.get("SLURM_CPUS_PER_TASK", "1")))
    except ValueError:
        return 1
