"""The folders of MD tasks, which the task writes itself (the one exception to "stages
return data": a task killed at any moment must resume from what it wrote).

A candidate folder holds its simulation cell (``prepared.json``), its cell relaxed with the
tasks' potential (``relaxed.json``: positions only at the input's lattice, or positions and
cell) and one task folder per temperature. One folder holds one potential and one cell
choice: resuming or re-planning with another is refused (:class:`TaskMismatch`).

A task folder holds the task (``task.json``), its checkpoint (``checkpoint.json``: step,
positions, momenta and the random generator's state, all exact) and its trajectory as
chunks (``frames-<last step>.npz``: unwrapped Cartesian positions every ``save_every``
steps). A chunk is written
before the checkpoint that follows it, both atomically, so a task killed at any moment
resumes from its last checkpoint and continues the very same trajectory.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from miscreen import atomic_io
from miscreen.errors import UserError
from miscreen.potentials import LEGACY_POTENTIAL, get_potential
from miscreen.verify.md_cell import Prepared
from miscreen.verify.md_protocol import MD_POTENTIAL, MDError, MDProtocol
from miscreen.verify.md_relax import Relaxed, relax

log = logging.getLogger(__name__)

# File names inside a candidate folder and a task folder (named once, here).
PREPARED_JSON = "prepared.json"
RELAXED_JSON = "relaxed.json"
TASK_JSON = "task.json"
CHECKPOINT_JSON = "checkpoint.json"
FRAMES_PREFIX = "frames-"
FRAMES_SUFFIX = ".npz"

# The cell a candidate's MD runs in: the input's lattice (a CIF's measured one, or a source's
# DFT cell), atoms relaxed at fixed cell; or the cell relaxed with the potential.
# Why positions only at the input's cell rather than relaxing and rescaling the cell to the
# measured lattice: the cell is then exactly the measured one, shape as well as volume (a
# rescaled relaxed cell keeps the potential's own c/a), and the relaxation is cheaper (no
# cell degrees of freedom). The universal potentials' equilibrium LGPS cell is 0.5-3.6 %
# larger in volume than the measured one (CHGNet 2.4 %, SevenNet-0 2.5 %), and a larger cell
# lowers migration barriers. NVT at the room-temperature lattice ignores thermal expansion
# up to 900 K (a few per cent in volume for a sulfide; rarely measured for a candidate), so
# the hot crystal is slightly compressed: it errs towards higher barriers, the opposite way
# from the potentials' softening.
EXPERIMENTAL, RELAXED = "experimental", "relaxed"
CELLS = (EXPERIMENTAL, RELAXED)


class TaskMismatch(UserError):
    """A task or candidate folder that holds work of another potential, cell choice or
    protocol: results of two set-ups are never mixed in one folder."""


def check_cell(cell: str) -> str:
    if cell not in CELLS:
        raise UserError(f"unknown cell {cell!r}; use one of {', '.join(CELLS)}")
    return cell


def write_prepared(candidate_dir: Path, prepared: Prepared) -> Path:
    return atomic_io.write_json(Path(candidate_dir) / PREPARED_JSON, prepared.to_dict())


def read_prepared(candidate_dir: Path) -> Prepared:
    return Prepared.from_dict(atomic_io.read_json(Path(candidate_dir) / PREPARED_JSON))


def read_relaxed(candidate_dir: Path) -> Relaxed | None:
    path = Path(candidate_dir) / RELAXED_JSON
    return Relaxed.from_dict(atomic_io.read_json(path)) if path.exists() else None


def write_relaxed(candidate_dir: Path, relaxed: Relaxed) -> Path:
    return atomic_io.write_json(Path(candidate_dir) / RELAXED_JSON, relaxed.to_dict())


def ensure_relaxed(
    candidate_dir: Path,
    protocol: MDProtocol,
    device: str = "cpu",
    potential: str = MD_POTENTIAL,
    cell: str = RELAXED,
) -> Relaxed:
    """The candidate's relaxed cell, relaxing (and saving) it the first time: at the
    prepared (input) lattice for ``cell="experimental"``, cell included for ``"relaxed"``.
    Tasks of one candidate running at once may both relax it: same input, same result,
    atomic write. A cell relaxed with another potential or cell choice is refused."""
    done = read_relaxed(candidate_dir)
    relax_cell = check_cell(cell) == RELAXED
    if done is not None:
        if done.potential != potential or done.relax_cell != relax_cell:
            was = RELAXED if done.relax_cell else EXPERIMENTAL
            raise TaskMismatch(
                f"{candidate_dir} was relaxed with {done.potential} ({was} cell), not "
                f"{potential} ({cell} cell); use another MD folder or remove this one"
            )
        return done
    prepared = read_prepared(candidate_dir)
    t0 = time.perf_counter()
    result = relax(
        prepared.structure,
        protocol.relax_fmax,
        protocol.relax_steps,
        device,
        potential=potential,
        relax_cell=relax_cell,
    )
    log.info(
        "relaxed %s (%d atoms, %s, %s cell) in %d steps, %.0f s, max force %.3f eV/A%s",
        prepared.id,
        len(result.structure),
        potential,
        cell,
        result.steps,
        time.perf_counter() - t0,
        result.max_force_ev_a,
        "" if result.converged else " (not converged)",
    )
    write_relaxed(candidate_dir, result)
    return result


@dataclass(frozen=True)
class MDTask:
    """One trajectory: a candidate at one temperature, with one potential (its name and
    the package and model version it was started with) in one cell."""

    candidate_id: str
    temperature_k: float
    protocol: MDProtocol
    seed: int = 0
    potential: str = LEGACY_POTENTIAL  # task.json files older than these fields: CHGNet
    potential_version: str = ""  # "" (older files): not checked on resume
    cell: str = RELAXED  # older files: the relaxed cell

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate_id": self.candidate_id,
            "temperature_k": self.temperature_k,
            "protocol": self.protocol.to_dict(),
            "seed": self.seed,
            "potential": self.potential,
            "potential_version": self.potential_version,
            "cell": self.cell,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MDTask:
        return cls(
            d["candidate_id"],
            float(d["temperature_k"]),
            MDProtocol.from_dict(d["protocol"]),
            int(d["seed"]),
            d.get("potential", LEGACY_POTENTIAL),
            d.get("potential_version", ""),
            d.get("cell", RELAXED),
        )

    def setup(self) -> str:
        version = self.potential_version or "version not recorded"
        return f"{self.potential} ({version}), {self.cell} cell"

    def check_potential(self, task_dir: Path) -> None:
        """Refuse to continue a trajectory with another version of its potential."""
        now = get_potential(self.potential).version
        if self.potential_version and now != self.potential_version:
            raise TaskMismatch(
                f"{task_dir} was started with {self.potential_version}; this environment "
                f"has {now}: continuing would mix two potentials in one trajectory"
            )

    @property
    def rng_seed(self) -> list[int]:
        """Seed sequence entropy: the run seed and the temperature, so tasks differ."""
        return [int(self.seed), round(self.temperature_k * 1000)]


def write_task(task_dir: Path, task: MDTask) -> Path:
    """Create a task folder inside its candidate's folder (whose relaxed cell it starts
    from); an existing task is kept as it is, so a re-plan never resets a trajectory."""
    path = Path(task_dir) / TASK_JSON
    if path.exists():
        old = MDTask.from_dict(atomic_io.read_json(path))
        if (old.potential, old.potential_version, old.cell) != (
            task.potential,
            task.potential_version,
            task.cell,
        ):
            raise TaskMismatch(
                f"{task_dir} holds a task with {old.setup()}, not {task.setup()}; "
                "use another MD folder (run name) or remove this one"
            )
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


def write_chunk(task_dir: Path, last_step: int, frames: list[tuple]) -> None:
    with atomic_io.atomic_path(_chunk_path(task_dir, last_step)) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            steps=np.array([f[0] for f in frames], dtype=np.int64),
            positions=np.array([f[1] for f in frames], dtype=np.float64),
            temperature_k=np.array([f[2] for f in frames], dtype=np.float64),
            potential_ev=np.array([f[3] for f in frames], dtype=np.float64),
        )


def write_checkpoint(task_dir: Path, step: int, atoms: Any, rng: np.random.Generator) -> None:
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
