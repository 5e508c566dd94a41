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


# quick: this 2-core machine (``make md-lgps`` in <= 90 min with CHGNet: two materials x
# three temperatures, two tasks at a time); results are marked as low-statistics.
# standard: a cluster or GPU (five temperatures, 100 ps of production each, every cell
# width >= 10 A). Both stay at or below 900 K: LGPS's Li sublattice changes near 400 K
# and its framework starts to melt in a universal potential at 1200 K, so a fit over
# 800-1200 K is a high-temperature value; lower temperatures need longer runs, which the
# expected error of Ea (:func:`expected_ea_stderr`) sizes.
QUICK = MDProtocol(
    name="quick",
    temperatures_k=(600.0, 750.0, 900.0),
    equilibration_ps=1.0,
    production_ps=7.0,
    checkpoint_every=250,
    max_atoms=60,
    relax_steps=300,
    low_statistics=True,
)
STANDARD = MDProtocol(
    name="standard",
    temperatures_k=(500.0, 600.0, 700.0, 800.0, 900.0),
    equilibration_ps=5.0,
    production_ps=100.0,
    checkpoint_every=1000,
    min_width_a=10.0,
    relax_steps=1000,
)
PROTOCOLS = {p.name: p for p in (QUICK, STANDARD)}
# The default potential of ``verify md``, chosen by benchmarks/md_validation.py (quick protocol,
# measured cells, six materials over 10.8 decades of measured sigma), by the rule fixed before
# its last material was in: SevenNet-0 if its Spearman beats CHGNet's and its mean signed error
# is no larger. SevenNet-0: Spearman 0.26, +3.1 decades; CHGNet 0.3.0: -0.09, +3.5. Neither
# ranks these materials well (targets 0.8 and 1 decade); SevenNet-0, stiffer (1.4 times
# CHGNet's energy rise under the same Li displacements in LGPS), keeps more of the slow
# conductors slow, at 2.5 times the cost per step. ``make md-lgps`` keeps CHGNet (its case).
MD_POTENTIAL = "sevennet-0"


def get_protocol(name: str) -> MDProtocol:
    if name not in PROTOCOLS:
        raise ValueError(f"unknown MD protocol {name!r}; use one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


# The expected statistical error (He, Zhu, Epstein and Mo, npj Comput. Mater. 4, 18 (2018)):
# the relative standard deviation of a diffusivity from one trajectory is about
#     RSD(D) = 3.43 / sqrt(N_eff) + 0.04,
# where N_eff = N_Li * MSD(t_production) / a**2 = 6 * D * t * N_Li / a**2 is the number of
# effective independent hops of length a. With D(T) guessed from an Arrhenius law, each
# temperature's ln D has a standard error of about RSD(D(T)), and the weighted straight-line
# fit of ln D against 1/T has a slope error sqrt(1 / sum w_i (x_i - x_w)**2), w_i = 1/RSD_i**2,
# x = 1/T; Ea = -k_B * slope, so its standard error is k_B times that.
BOLTZMANN_EV_K = 8.617333262e-5
LI_HOP_A = 2.5  # a typical Li site-to-site distance in sulfides and oxides (A)
GUESS_EA_EV = 0.25  # a fast conductor like LGPS (Kamaya et al. 2011)
GUESS_D300_CM2_S = 1e-7  # LGPS's 12 mS/cm at 300 K by Nernst-Einstein (20 Li in 952 A^3)
GUESS_N_LI = 20  # Li in a ~50-atom LGPS cell


def guessed_diffusivity(
    temperature_k: float, ea_ev: float = GUESS_EA_EV, d300_cm2_s: float = GUESS_D300_CM2_S
) -> float:
    """Arrhenius guess of D (cm^2/s) at a temperature from its 300 K value and Ea."""
    return d300_cm2_s * math.exp(-ea_ev / BOLTZMANN_EV_K * (1.0 / temperature_k - 1.0 / 300.0))


def effective_hops(
    diffusivity_cm2_s: float, production_ps: float, n_li: int, hop_a: float = LI_HOP_A
) -> float:
    """He et al.'s N_eff: the Li ions' total mean-square displacement over the production
    run, in units of one hop length squared."""
    d_a2_fs = diffusivity_cm2_s * 10.0  # cm^2/s -> A^2/fs
    return 6.0 * d_a2_fs * production_ps * 1000.0 * n_li / hop_a**2


def diffusivity_rsd(n_eff: float) -> float:
    """Relative standard deviation of D from N_eff effective hops (He et al. 2018)."""
    return 3.43 / math.sqrt(n_eff) + 0.04 if n_eff > 0 else math.inf


def ea_stderr(temperatures_k: tuple[float, ...], rsd: list[float]) -> float:
    """Standard error (eV) of Ea from a weighted fit of ln D against 1/T, each ln D with
    standard error ``rsd`` (the relative error of its D)."""
    x = [1.0 / t for t in temperatures_k]
    w = [1.0 / r**2 for r in rsd]
    xw = sum(wi * xi for wi, xi in zip(w, x, strict=True)) / sum(w)
    spread = sum(wi * (xi - xw) ** 2 for wi, xi in zip(w, x, strict=True))
    return BOLTZMANN_EV_K / math.sqrt(spread) if spread > 0 else math.inf


def expected_ea_stderr(
    protocol: MDProtocol,
    n_li: int = GUESS_N_LI,
    ea_ev: float = GUESS_EA_EV,
    d300_cm2_s: float = GUESS_D300_CM2_S,
) -> float:
    """The standard error of Ea (eV) the protocol should give for a conductor with this
    Li count, Ea and D(300 K) (default: LGPS in a ~50-atom cell; a protocol with a
    ``min_width_a`` cell holds more Li, which its caller passes)."""
    rsd = [
        diffusivity_rsd(
            effective_hops(guessed_diffusivity(t, ea_ev, d300_cm2_s), protocol.production_ps, n_li)
        )
        for t in protocol.temperatures_k
    ]
    return ea_stderr(protocol.temperatures_k, rsd)


def error_line(protocol: MDProtocol, n_li: int = GUESS_N_LI) -> str:
    """One line printed before a run: the expected standard error of Ea."""
    return (
        f"expected standard error of Ea (He et al. 2018) for a conductor like LGPS "
        f"(Ea {GUESS_EA_EV:g} eV, D(300 K) {GUESS_D300_CM2_S:g} cm2/s) with {n_li} Li: "
        f"±{expected_ea_stderr(protocol, n_li):.3f} eV"
    )


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
