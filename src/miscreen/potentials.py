"""The machine-learned potentials (MD, relaxations): one small class per pretrained potential
whose weights ship inside its wheel (so it runs offline), a registry by name, the one
relaxation every stage uses (:func:`minimize`), the device and torch's threads.

A potential has a ``name`` (what ``--potential`` takes), a ``version`` (package version and
model, recorded with every result) and ``calculator(device)``, an ASE calculator giving
energy, forces and stress. Adding a potential is one class and one line in ``POTENTIALS``.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import time
import warnings
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any

import numpy as np
from pymatgen.core import Lattice, Structure

from miscreen.errors import UserError
from miscreen.store.structure_json import structure_from_dict

# the potential of MD and relaxation files written before the potential was recorded in them
# (``verify md``'s default is ``miscreen.verify.md_protocol.MD_POTENTIAL``)
LEGACY_POTENTIAL = "chgnet"


class PotentialError(UserError, ValueError):
    """An unknown potential name, or a potential whose package is not installed."""


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when a GPU is visible to torch, else ``cpu``."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _installed_version(package: str) -> str:
    try:
        return package_version(package)
    except PackageNotFoundError as exc:
        raise PotentialError(
            f"the {package} package is not installed (pip install -e '.[md]')"
        ) from exc


@functools.lru_cache(maxsize=8)
def load_chgnet(device: str = "cpu", model: str = "0.3.0") -> Any:
    """A pretrained CHGNet (weights ship in the wheel), loaded once per process."""
    from chgnet.model import CHGNet

    with contextlib.redirect_stdout(io.StringIO()):
        return CHGNet.load(model_name=model, verbose=False, use_device=device)


@dataclass(frozen=True)
class CHGNetPotential:
    """CHGNet (Deng et al. 2023): ``0.3.0`` trained on MPtrj (PBE/PBE+U), ``r2scan``
    transfer-learned to MP's r2SCAN data."""

    name: str
    model: str = "0.3.0"
    reference: str = "B. Deng et al., Nat. Mach. Intell. 5, 1031 (2023)"

    @property
    def version(self) -> str:
        return f"chgnet {_installed_version('chgnet')}, model {self.model}"

    def calculator(self, device: str = "cpu") -> Any:
        from chgnet.model.dynamics import CHGNetCalculator

        _installed_version("chgnet")
        with contextlib.redirect_stdout(io.StringIO()):  # it prints the device
            return CHGNetCalculator(model=load_chgnet(device, self.model), use_device=device)


@functools.lru_cache(maxsize=8)
def _load_sevennet(model: str, device: str) -> Any:
    from sevenn import util

    checkpoint = util.load_checkpoint(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return checkpoint.build_model(), checkpoint.config


@dataclass(frozen=True)
class SevenNetPotential:
    """SevenNet (Park et al. 2024): ``7net-0`` (MPtrj, PBE), ``7net-l3i5`` (MPtrj, higher
    angular order, stiffer), ``7net-mf-0`` (multi-fidelity; ``modal`` picks its PBE head)."""

    name: str
    model: str
    modal: str | None = None
    reference: str = "Y. Park et al., J. Chem. Theory Comput. 20, 4857 (2024)"

    @property
    def version(self) -> str:
        head = f" ({self.modal} head)" if self.modal else ""
        return f"sevenn {_installed_version('sevenn')}, model {self.model}{head}"

    def calculator(self, device: str = "cpu") -> Any:
        _installed_version("sevenn")
        from sevenn.calculator import SevenNetCalculator

        model, config = _load_sevennet(self.model, device)
        with warnings.catch_warnings():  # "no tensor-product accelerator" on every call
            warnings.simplefilter("ignore")
            return SevenNetCalculator(
                model=model,
                file_type="model_instance",
                device=device,
                modal=self.modal,
                sevennet_config=config,
            )


POTENTIALS: dict[str, CHGNetPotential | SevenNetPotential] = {
    p.name: p
    for p in (
        CHGNetPotential("chgnet", "0.3.0"),
        CHGNetPotential("chgnet-r2scan", "r2scan"),
        SevenNetPotential("sevennet-0", "7net-0"),
        SevenNetPotential("sevennet-l3i5", "7net-l3i5"),
        SevenNetPotential("sevennet-mf-0", "7net-mf-0", modal="PBE"),
    )
}


def get_potential(name: str) -> CHGNetPotential | SevenNetPotential:
    """The potential called ``name``; a :class:`PotentialError` lists the names otherwise."""
    if name not in POTENTIALS:
        raise PotentialError(f"unknown potential {name!r}; use one of {', '.join(POTENTIALS)}")
    return POTENTIALS[name]


def set_threads(threads: int) -> None:
    """Torch intra-op threads (one per task by default: tasks run side by side)."""
    import torch

    torch.set_num_threads(max(1, int(threads)))


def default_threads() -> int:
    """Threads per task: ``SLURM_CPUS_PER_TASK`` in a SLURM job, else 1."""
    try:
        return max(1, int(os.environ.get("SLURM_CPUS_PER_TASK", "1")))
    except ValueError:
        return 1


# ------------------------------------------------------------------ relaxation

CONVERGED, STEP_LIMIT, TIME_LIMIT = "converged", "step limit", "time limit"
MIN_DISTANCE_A = 0.5  # closer than any bond (H2: 0.74 A): the relaxation collapsed


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
class Relaxation:
    """A relaxed structure and how the relaxation ended."""

    structure: Structure
    energy_ev_per_atom: float
    max_force_ev_a: float
    steps: int
    converged: bool
    stopped: str  # converged | step limit | time limit | collapsed (d A)
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "structure": self.structure.as_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Relaxation:
        return cls(**{**d, "structure": structure_from_dict(d["structure"])})


def closest_distance(structure: Structure) -> float:
    """The shortest distance between two sites (periodic images included), in Å."""
    if len(structure) < 2:
        return min(structure.lattice.abc)
    d = structure.distance_matrix
    return float(d[~np.eye(len(structure), dtype=bool)].min())


def minimize(
    structure: Structure,
    calc: Any,
    fmax: float = 0.05,
    steps: int = 300,
    time_limit_s: float | None = None,
    relax_cell: bool = True,
) -> Relaxation:
    """Relax ``structure`` with the ASE calculator ``calc``: FIRE on a ``FrechetCellFilter``
    (positions and cell; the criterion ``fmax`` covers forces and stress), or on the atoms
    alone with ``relax_cell=False``; stopped at ``fmax``, after ``steps`` steps or after
    ``time_limit_s`` seconds. A left-handed cell is made right-handed first. A relaxation
    that collapsed (two atoms closer than ``MIN_DISTANCE_A``, where a universal potential's
    energy means nothing: SevenNet-0 gave -8,400 eV/atom for one such Li4GeSe4 cell) keeps no
    energy (NaN) and says so in ``stopped``."""
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(right_handed(structure))
    atoms.calc = calc
    start = time.perf_counter()
    optimizer = FIRE(FrechetCellFilter(atoms) if relax_cell else atoms, logfile=None)
    stopped = STEP_LIMIT
    for converged in optimizer.irun(fmax=fmax, steps=steps):
        if converged:
            stopped = CONVERGED
            break
        if time_limit_s is not None and time.perf_counter() - start > time_limit_s:
            stopped = TIME_LIMIT
            break
    forces = np.asarray(atoms.get_forces())
    energy = float(atoms.get_potential_energy())
    atoms.calc = None
    final = AseAtomsAdaptor.get_structure(atoms)
    for key in list(final.site_properties):
        final.remove_site_property(key)
    closest = closest_distance(final)
    if closest < MIN_DISTANCE_A:
        energy, stopped = float("nan"), f"collapsed ({closest:.2f} A)"
    return Relaxation(
        structure=final,
        energy_ev_per_atom=energy / len(final),
        max_force_ev_a=float(np.linalg.norm(forces, axis=1).max()),
        steps=int(optimizer.nsteps),
        converged=stopped == CONVERGED,
        stopped=stopped,
        seconds=round(time.perf_counter() - start, 3),
    )
