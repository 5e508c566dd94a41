"""The MD protocols of tier 2 of verify: how long, how hot and how big a candidate's
simulation is (``quick`` for a small machine, ``standard`` for a cluster or GPU)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from miscreen.errors import UserError

STAGE = "verify-md"


class MDError(UserError, ValueError):
    """A candidate that cannot be simulated (ordering, charge balance, size), or a task
    folder that holds another task; names why."""


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


def describe(protocol: MDProtocol) -> str:
    """One sentence for reports: temperatures, lengths, cell size and the hop rule."""
    size = (
        f"every cell width ≥ {protocol.min_width_a:g} Å"
        if protocol.min_width_a
        else f"cells of up to ~{protocol.max_atoms} atoms"
    )
    return (
        f"NVT at {', '.join(f'{t:g}' for t in protocol.temperatures_k)} K, "
        f"{protocol.equilibration_ps:g} ps equilibration + {protocol.production_ps:g} ps "
        f"production each, {protocol.time_step_fs:g} fs steps, {size}; a temperature with "
        f"fewer than {protocol.min_hops} Li hops gives an upper bound only."
    )
