"""Diffusion analysis of MD trajectories with pymatgen-analysis-diffusion.

Per temperature: ``DiffusionAnalyzer.from_structures`` (drift-corrected, smoothed MSD fit)
gives the Li tracer diffusivity and the Nernst-Einstein conductivity with their standard
deviations. Per candidate: ``fit_arrhenius`` gives Ea with its standard error, and
``get_extrapolated_conductivity`` sigma(300 K).

Two things the package does not provide are added here, kept small:

- Li hops. A hop is a move of an ion's time-averaged position (``HOP_WINDOW_FS``, which
  averages out vibrations) by more than ``HOP_DISTANCE_A`` from where it last settled.
  With fewer than ``min_hops`` hops at a temperature, the MSD slope there is not a
  diffusivity: it is reported as an upper bound, the larger of the fitted slope and the
  detection limit (the diffusivity at which ``min_hops`` hops of ``HOP_DISTANCE_A`` would
  have been seen), and it is left out of the Arrhenius fit.
- The confidence interval of sigma(300 K): the ordinary least-squares fit of ln D against
  1/T that ``fit_arrhenius`` makes, its standard error at 1/300 K and Student's t with
  n - 2 degrees of freedom (n fitted temperatures); none with two temperatures.
- The Arrhenius fit is made against each run's mean kinetic temperature
  (:func:`fit_temperature`), not its target.
- The standard error of the mean temperature of the production frames, from the spread of
  ``TEMPERATURE_BLOCKS`` block means (blocks of ~1 ps, several thermostat times, are nearly
  independent). A 50-atom cell's temperature swings by ~12 % from frame to frame, so its
  7 ps mean is known to ~2 %: a mean 2-5 % off the target is not by itself a fault.

With fewer than two temperatures with enough hops there is no fit: sigma(300 K) is then an
upper bound, the lowest temperature's upper-bound diffusivity converted at 300 K (valid
because D rises with temperature).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from pymatgen.core import Lattice, Structure

from miscreen.schema import MOBILE_ION

TARGET_K = 300.0
CONFIDENCE = 0.95
HOP_DISTANCE_A = 1.5
HOP_WINDOW_FS = 200.0
# more than this share of framework atoms displaced this far: the framework is not solid
# (one atom alone, e.g. a sulfur of a rotating PS4 group, can move 3 A at 1000 K)
FRAMEWORK_MELT_A, FRAMEWORK_MELT_SHARE = 3.0, 0.1
MIN_OBS = 30  # DiffusionAnalyzer's default
TEMPERATURE_BLOCKS = 7  # block means for the standard error of the mean temperature

# How sigma(300 K) was obtained (ArrheniusResult.status).
STATUS_ESTIMATE = "estimate"
STATUS_UPPER_BOUND = "upper bound"


@dataclass
class TemperatureResult:
    """One trajectory's diffusion numbers (cm^2/s, mS/cm)."""

    temperature_k: float
    production_ps: float
    n_frames: int
    n_li: int
    li_hops: int
    diffusivity_cm2_s: float
    diffusivity_std_cm2_s: float
    conductivity_ms_cm: float
    conductivity_std_ms_cm: float
    upper_bound: bool  # too few hops: diffusivity_bound_cm2_s is an upper bound, not a value
    diffusivity_bound_cm2_s: float
    mean_temperature_k: float
    framework_max_disp_a: float
    framework_melted: bool
    mean_temperature_stderr_k: float = math.nan
    msd_dt_fs: list[float] = field(default_factory=list, repr=False)
    msd_a2: list[float] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TemperatureResult:
        return cls(**d)


def frames_to_structures(structure: Structure, positions: np.ndarray) -> list[Structure]:
    """One Structure per frame of unwrapped Cartesian positions (fixed cell: NVT)."""
    lattice = Lattice(structure.lattice.matrix)
    species = [site.specie for site in structure]
    return [
        Structure(lattice, species, frame, coords_are_cartesian=True, to_unit_cell=False)
        for frame in positions
    ]


def count_hops(
    displacements: np.ndarray,
    frame_fs: float,
    hop_distance_a: float = HOP_DISTANCE_A,
    window_fs: float = HOP_WINDOW_FS,
) -> np.ndarray:
    """Hops per ion from drift-corrected displacements ``[ion, frame, xyz]`` (A)."""
    n_ion, n_frame, _ = displacements.shape
    w = max(1, min(n_frame, round(window_fs / frame_fs)))
    if n_frame == 0:
        return np.zeros(n_ion, dtype=int)
    kernel = np.ones(w) / w
    smooth = np.stack(
        [
            np.stack(
                [np.convolve(displacements[i, :, k], kernel, mode="valid") for k in range(3)], -1
            )
            for i in range(n_ion)
        ]
    )
    hops = np.zeros(n_ion, dtype=int)
    for i in range(n_ion):
        anchor = smooth[i, 0]
        for x in smooth[i, 1:]:
            if np.sum((x - anchor) ** 2) > hop_distance_a**2:
                hops[i] += 1
                anchor = x
    return hops


def detection_limit(
    min_hops: int, n_li: int, production_fs: float, hop_distance_a: float = HOP_DISTANCE_A
) -> float:
    """The diffusivity (cm^2/s) at which ``min_hops`` hops of ``hop_distance_a`` would be
    expected among ``n_li`` ions in ``production_fs``: D = n a^2 / (6 N t)."""
    if n_li == 0 or production_fs <= 0:
        return math.inf
    return min_hops * hop_distance_a**2 / (6.0 * n_li * production_fs) * 0.1  # A^2/fs -> cm^2/s


def mean_temperature(
    temperatures_k: np.ndarray | None, blocks: int = TEMPERATURE_BLOCKS
) -> tuple[float, float]:
    """(mean, its standard error) of the frames' temperatures; the error from the spread of
    ``blocks`` consecutive block means (NaN with fewer than two frames per block)."""
    if temperatures_k is None or not len(temperatures_k):
        return math.nan, math.nan
    t = np.asarray(temperatures_k, dtype=float)
    if len(t) < 2 * blocks:
        return float(t.mean()), math.nan
    means = np.array([b.mean() for b in np.array_split(t, blocks)])
    return float(t.mean()), float(means.std(ddof=1) / math.sqrt(blocks))


def analyze_trajectory(
    structure: Structure,
    positions: np.ndarray,
    temperature_k: float,
    time_step_fs: float,
    save_every: int,
    min_hops: int = 10,
    temperatures_k: np.ndarray | None = None,
    hop_distance_a: float = HOP_DISTANCE_A,
) -> tuple[TemperatureResult, Any]:
    """Diffusion at one temperature from the production frames (the first one is the time
    origin) -> (result, the ``DiffusionAnalyzer``)."""
    from pymatgen.analysis.diffusion.analyzer import DiffusionAnalyzer

    if len(positions) < 3:
        raise ValueError(f"{temperature_k:g} K: {len(positions)} frames, too few to analyse")
    structures = frames_to_structures(structure, positions)
    frame_fs = time_step_fs * save_every
    # The smoothed fit uses lags from 1 ps up to n_li * frames / min_obs frames; for short
    # runs of few Li ions lower min_obs (default 30) so that the lags reach at least 2 ps.
    n_li = int(structure.composition[MOBILE_ION])
    first_lag = int(1000 / frame_fs)
    min_obs = max(1, min(MIN_OBS, n_li * len(positions) // (2 * first_lag)))
    if min(n_li * len(positions) // min_obs, len(positions)) <= first_lag:
        raise ValueError(
            f"{temperature_k:g} K: {(len(positions) - 1) * frame_fs / 1000:.2f} ps of production "
            "is too short for a diffusivity (the fit starts at a 1 ps lag)"
        )
    da = DiffusionAnalyzer.from_structures(
        structures,
        MOBILE_ION,
        temperature_k,
        time_step_fs,
        save_every,
        smoothed="max",
        min_obs=min_obs,
    )
    production_fs = frame_fs * (len(positions) - 1)
    li = np.asarray(da.indices)
    hops = int(count_hops(da.corrected_displacements[li], frame_fs, hop_distance_a).sum())
    too_few = hops < min_hops
    limit = detection_limit(min_hops, len(li), production_fs, hop_distance_a)
    bound = max(float(da.diffusivity), limit) if too_few else float(da.diffusivity)
    framework = float(da.max_framework_displacement) if len(da.framework_indices) else 0.0
    if len(da.framework_indices):
        reach = np.linalg.norm(da.corrected_displacements[da.framework_indices], axis=-1).max(1)
        melted = float(np.mean(reach > FRAMEWORK_MELT_A)) > FRAMEWORK_MELT_SHARE
    else:
        melted = False
    t_mean, t_stderr = mean_temperature(temperatures_k)
    return (
        TemperatureResult(
            temperature_k=float(temperature_k),
            production_ps=production_fs / 1000.0,
            n_frames=len(positions),
            n_li=len(li),
            li_hops=hops,
            diffusivity_cm2_s=float(da.diffusivity),
            diffusivity_std_cm2_s=float(da.diffusivity_std_dev),
            conductivity_ms_cm=float(da.conductivity),
            conductivity_std_ms_cm=float(da.conductivity_std_dev),
            upper_bound=bool(too_few),
            diffusivity_bound_cm2_s=bound,
            mean_temperature_k=t_mean,
            framework_max_disp_a=framework,
            framework_melted=melted,
            mean_temperature_stderr_k=t_stderr,
            msd_dt_fs=[float(x) for x in da.dt],
            msd_a2=[float(x) for x in da.msd],
        ),
        da,
    )


@dataclass
class ArrheniusResult:
    """A candidate's Arrhenius fit and its extrapolation to ``TARGET_K``."""

    status: str  # STATUS_ESTIMATE or STATUS_UPPER_BOUND
    temperatures_fit_k: list[float]
    ea_ev: float | None
    ea_stderr_ev: float | None
    prefactor_cm2_s: float | None
    sigma_300k_ms_cm: float | None  # None when only an upper bound is known
    sigma_300k_interval_ms_cm: list[float] | None  # CONFIDENCE interval, None if unknown
    sigma_300k_upper_bound_ms_cm: float | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ArrheniusResult:
        return cls(**d)


def _log_d_interval(
    temps: np.ndarray, log_d: np.ndarray, target_k: float, confidence: float
) -> tuple[float, float] | None:
    """Half-width-defining bounds of ln D at ``target_k`` from the OLS fit of ln D on 1/T
    (the fit ``fit_arrhenius`` makes): mean response +- t * standard error."""
    from scipy import stats

    n = len(temps)
    if n < 3:
        return None
    x = 1.0 / temps
    slope, intercept = np.polyfit(x, log_d, 1)
    resid = log_d - (slope * x + intercept)
    s2 = float(np.sum(resid**2)) / (n - 2)
    x0 = 1.0 / target_k
    sxx = float(np.sum((x - x.mean()) ** 2))
    se = math.sqrt(s2 * (1.0 / n + (x0 - x.mean()) ** 2 / sxx))
    t = float(stats.t.ppf(0.5 + confidence / 2.0, n - 2))
    centre = slope * x0 + intercept
    return centre - t * se, centre + t * se


def fit_temperature(result: TemperatureResult) -> float:
    """The temperature a diffusivity is fitted at: the run's mean kinetic temperature where
    it was recorded, else the thermostat's target. A run's mean is off its target by the
    thermostat's random kicks (~2 % in 7 ps of a 50-atom cell; the same kicks for every
    potential, since they come from the task's seed), and the atoms diffused at the mean."""
    t = result.mean_temperature_k
    return float(t) if math.isfinite(t) and t > 0 else float(result.temperature_k)


def arrhenius(
    results: list[TemperatureResult],
    structure: Structure,
    target_k: float = TARGET_K,
    confidence: float = CONFIDENCE,
) -> ArrheniusResult:
    """Fit the temperatures with enough hops; extrapolate sigma to ``target_k``."""
    from pymatgen.analysis.diffusion.analyzer import (
        fit_arrhenius,
        get_conversion_factor,
        get_extrapolated_conductivity,
    )

    notes: list[str] = []
    results = sorted(results, key=lambda r: r.temperature_k)
    fit = [r for r in results if not r.upper_bound and r.diffusivity_cm2_s > 0]
    bounded = [r for r in results if r.upper_bound]
    if bounded:
        notes.append(
            "too few Li hops at "
            + ", ".join(f"{r.temperature_k:g} K" for r in bounded)
            + ": upper bounds, left out of the fit"
        )
    if any(r.framework_melted for r in results):
        hot = ", ".join(f"{r.temperature_k:g} K" for r in results if r.framework_melted)
        notes.append(
            f"over {FRAMEWORK_MELT_SHARE:.0%} of framework atoms moved > "
            f"{FRAMEWORK_MELT_A:.0f} A at {hot} (melting?)"
        )
    conv = get_conversion_factor(structure, MOBILE_ION, target_k)
    if len(fit) < 2:
        low = results[0] if results else None
        bound = low.diffusivity_bound_cm2_s * conv if low else None
        notes.append("fewer than two temperatures with enough hops: no Arrhenius fit")
        return ArrheniusResult(
            STATUS_UPPER_BOUND,
            [r.temperature_k for r in fit],
            None,
            None,
            None,
            None,
            None,
            bound,
            notes,
        )
    temps = np.array([fit_temperature(r) for r in fit])
    ds = np.array([r.diffusivity_cm2_s for r in fit])
    ea, c, ea_se = fit_arrhenius(temps, ds)
    sigma = float(get_extrapolated_conductivity(temps, ds, target_k, structure, MOBILE_ION))
    band = _log_d_interval(temps, np.log(ds), target_k, confidence)
    interval = [float(math.exp(band[0]) * conv), float(math.exp(band[1]) * conv)] if band else None
    if band is None:
        notes.append("two fitted temperatures: no error estimate")
    if ea <= 0:
        notes.append("Ea <= 0: no activated diffusion seen")
    # a bound below the fit's lowest temperature bounds sigma(300 K) too (D rises with T)
    upper = None
    if bounded and bounded[0].temperature_k < min(r.temperature_k for r in fit):
        upper = bounded[0].diffusivity_bound_cm2_s * conv
    return ArrheniusResult(
        status=STATUS_ESTIMATE,
        temperatures_fit_k=[r.temperature_k for r in fit],
        ea_ev=float(ea),
        ea_stderr_ev=None if ea_se is None else float(ea_se),
        prefactor_cm2_s=float(c),
        sigma_300k_ms_cm=sigma,
        sigma_300k_interval_ms_cm=interval,
        sigma_300k_upper_bound_ms_cm=upper,
        notes=notes,
    )
