"""Relaxation (cell and positions) of generated candidates with a universal potential, one
result file per candidate so that a killed batch resumes.

Every potential of :mod:`miscreen.potentials` relaxes the same way
(:func:`miscreen.potentials.minimize`, as verify's MD cells do): ASE's FIRE on a
``FrechetCellFilter`` (positions and cell together), stopped at ``fmax`` (forces and stress),
after ``steps`` steps or after ``time_limit_s`` seconds, whichever comes first, on a
right-handed cell (CHGNet's stress has the wrong sign in a left-handed one). A result
records the energy per atom, the largest force on an atom at the end, the steps taken,
whether it converged and why it stopped; the result file also names the potential and the
setting, and the fingerprint of the structure it started from, so a result of another
structure or setting is never taken for this one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymatgen.core import Structure

from miscreen import atomic_io
from miscreen.potentials import Relaxation, get_potential, minimize
from miscreen.screen.energies import Potential, fingerprint
from miscreen.store.structure_json import structure_from_dict

log = logging.getLogger(__name__)

PROTOCOL = "fire-frechet-rh"  # FIRE on a Frechet cell filter, right-handed cells


@dataclass(frozen=True)
class RelaxSettings:
    """What a relaxation does: potential, device, force criterion and limits."""

    potential: str = "chgnet"
    fmax: float = 0.05  # eV/Å (stress in eV/Å^3 through the filter)
    steps: int = 300
    time_limit_s: float = 600.0
    device: str = "cpu"

    @property
    def key(self) -> str:
        """The setting's name in result files and the energy cache (device left out)."""
        return f"{self.potential}-{PROTOCOL}-fmax{self.fmax:g}-steps{self.steps}"


def relax_structure(structure: Structure, settings: RelaxSettings, calc: Any) -> Relaxation:
    """Relax ``structure`` with the ASE calculator ``calc`` under ``settings`` (a collapsed
    relaxation keeps no energy: :func:`miscreen.potentials.minimize`)."""
    return minimize(
        structure, calc, settings.fmax, settings.steps, settings.time_limit_s, relax_cell=True
    )


def relaxer(settings: RelaxSettings) -> Callable[[Structure], Relaxation]:
    """A function that relaxes one structure with the settings' potential (loaded once)."""
    calc = get_potential(settings.potential).calculator(settings.device)
    return lambda structure: relax_structure(structure, settings, calc)


def relaxing_potential(settings: RelaxSettings) -> Potential:
    """Energies per atom after relaxing each structure as the candidates are relaxed: the
    reference phases of a hull then sit at the potential's own minimum, as the candidates
    do (:class:`miscreen.screen.energies.EnergyCalculator` takes it, with ``settings.key``)."""
    state: dict[str, Callable[[Structure], Relaxation]] = {}

    def energies(structures: list[Structure]) -> list[float]:
        run = state.get("run") or state.setdefault("run", relaxer(settings))
        out = []
        for s in structures:
            r = run(s)
            log.info("reference %s relaxed: %d steps (%s, %.0f s)",
                     s.composition.reduced_formula, r.steps, r.stopped, r.seconds)  # fmt: skip
            out.append(r.energy_ev_per_atom)
        return out

    return energies


# ------------------------------------------------------------------ resumable results


def result_path(folder: Path, index: int) -> Path:
    """Candidate ``index``'s result file in ``folder``."""
    return Path(folder) / f"relaxed-{index:05d}.json"


def read_result(path: Path, structure: Structure, settings: RelaxSettings) -> Relaxation | None:
    """The result in ``path`` when it is of this structure and setting, else None."""
    if not path.is_file():
        return None
    try:
        doc = atomic_io.read_json(path)
    except (OSError, ValueError) as exc:
        log.warning("generate: %s unreadable (%s); relaxing again", path, exc)
        return None
    if doc.get("setting") != settings.key or doc.get("fingerprint") != fingerprint(structure):
        return None
    return Relaxation.from_dict(doc["result"])


def relax_one(
    folder: Path,
    index: int,
    cid: str,
    structure: Structure,
    settings: RelaxSettings,
    run: Callable[[Structure], Relaxation] | None = None,
) -> Relaxation:
    """Candidate ``index``'s relaxation: read when already done, else computed and written
    atomically (a kill loses only the structure in progress)."""
    path = result_path(folder, index)
    done = read_result(path, structure, settings)
    if done is not None:
        return done
    result = (run or relaxer(settings))(structure)
    doc = {
        "id": cid,
        "index": index,
        "setting": settings.key,
        "potential_version": get_potential(settings.potential).version,
        "fingerprint": fingerprint(structure),
        "result": result.to_dict(),
    }
    atomic_io.write_json(path, doc)
    log.info(
        "relaxed %s: %.4f eV/atom, max force %.3f eV/Å, %d steps (%s, %.0f s)",
        cid, result.energy_ev_per_atom, result.max_force_ev_a, result.steps, result.stopped,
        result.seconds,
    )  # fmt: skip
    return result


def relax_all(
    folder: Path, items: list[tuple[int, str, Structure]], settings: RelaxSettings
) -> dict[int, Relaxation]:
    """Relax every ``(index, id, structure)`` not yet done, one after another in this
    process (the potential loaded once) -> results by index."""
    out: dict[int, Relaxation] = {}
    run: Callable[[Structure], Relaxation] | None = None
    for index, cid, structure in items:
        done = read_result(result_path(folder, index), structure, settings)
        if done is None and run is None:
            run = relaxer(settings)
        out[index] = done or relax_one(folder, index, cid, structure, settings, run)
    return out


def _relax_part(
    folder: Path, items: list[tuple[int, str, dict]], settings: RelaxSettings, threads: int
) -> dict[int, dict]:
    from miscreen.potentials import set_threads

    set_threads(threads)
    parsed = [(i, cid, structure_from_dict(d)) for i, cid, d in items]
    return {i: r.to_dict() for i, r in relax_all(folder, parsed, settings).items()}


def relax_processes(
    folder: Path,
    items: list[tuple[int, str, Structure]],
    settings: RelaxSettings,
    jobs: int,
    threads: int = 1,
) -> dict[int, Relaxation]:
    """:func:`relax_all` split over ``jobs`` processes (each loads the potential once and
    runs ``threads`` torch threads); in this process when ``jobs`` is 1."""
    if jobs <= 1 or len(items) <= 1:
        from miscreen.potentials import set_threads

        set_threads(threads)
        return relax_all(folder, items, settings)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    parts = [[(i, c, s.as_dict()) for i, c, s in items[k::jobs]] for k in range(jobs)]
    out: dict[int, Relaxation] = {}
    context = multiprocessing.get_context("spawn")  # torch does not survive a fork
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = [pool.submit(_relax_part, folder, p, settings, threads) for p in parts if p]
        for future in futures:
            out |= {i: Relaxation.from_dict(d) for i, d in future.result().items()}
    return out
