"""The results of a run's MD verification, read from its task folders: per candidate the
diffusion numbers of every finished temperature and the Arrhenius fit
(:func:`analyze_plan`), and the tables the wiring writes (:func:`temperature_table`,
:func:`summary_table`). Unfinished tasks are listed as incomplete, not guessed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from miscreen import schema as S
from miscreen.formatting import ea_text, sigma_text
from miscreen.verify.md_analysis import (
    ArrheniusResult,
    TemperatureResult,
    analyze_trajectory,
    arrhenius,
)
from miscreen.verify.md_protocol import MDProtocol
from miscreen.verify.md_run import Plan, temperature_folder
from miscreen.verify.md_tasks import (
    EXPERIMENTAL,
    RELAXED,
    read_prepared,
    read_relaxed,
    read_trajectory,
    task_progress,
)


@dataclass
class CandidateResult:
    """One candidate's MD verification."""

    id: str
    formula: str
    atoms: int
    n_li: int
    ordering: str
    ml: tuple[float, float, float] | None
    relaxed: dict[str, Any]
    temperatures: list[TemperatureResult]
    arrhenius: ArrheniusResult | None
    incomplete: list[float]  # temperatures whose task has not finished
    problems: list[str]  # temperatures that finished but could not be analysed, and why
    potential: str | None = None  # None: not relaxed yet (older results: CHGNet, relaxed)
    potential_version: str | None = None
    cell: str | None = None  # experimental | relaxed

    @property
    def li_hops(self) -> int:
        """Li hops seen over every finished temperature."""
        return sum(t.li_hops for t in self.temperatures)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "formula": self.formula,
            "atoms": self.atoms,
            "n_li": self.n_li,
            "ordering": self.ordering,
            "ml": list(self.ml) if self.ml else None,
            "relaxed": self.relaxed,
            "temperatures": [t.to_dict() for t in self.temperatures],
            "arrhenius": self.arrhenius.to_dict() if self.arrhenius else None,
            "incomplete": self.incomplete,
            "problems": self.problems,
            "potential": self.potential,
            "potential_version": self.potential_version,
            "cell": self.cell,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CandidateResult:
        return cls(
            **{
                **d,
                "ml": tuple(d["ml"]) if d.get("ml") else None,
                "temperatures": [TemperatureResult.from_dict(t) for t in d["temperatures"]],
                "arrhenius": ArrheniusResult.from_dict(d["arrhenius"]) if d["arrhenius"] else None,
            }
        )


def analyze_candidate(cdir: Path, protocol: MDProtocol) -> CandidateResult:
    """Every finished temperature of one candidate, and its Arrhenius fit (when at least
    two temperatures finished)."""
    prepared = read_prepared(cdir)
    relaxed = read_relaxed(cdir)
    temps, incomplete, problems = [], [], []
    for t in protocol.temperatures_k:
        tdir = cdir / temperature_folder(t)
        if relaxed is None or task_progress(tdir) < protocol.total_steps:
            incomplete.append(float(t))
            continue
        traj = read_trajectory(tdir)
        keep = traj.steps >= protocol.equilibration_steps
        try:
            result, _ = analyze_trajectory(
                relaxed.structure,
                traj.positions[keep],
                t,
                protocol.time_step_fs,
                protocol.save_every,
                protocol.min_hops,
                traj.temperature_k[keep],
            )
        except ValueError as exc:
            problems.append(str(exc))
            continue
        temps.append(result)
    fit = arrhenius(temps, relaxed.structure) if relaxed is not None and len(temps) >= 2 else None
    if fit is not None:
        fit.notes.extend(problems)
    structure = relaxed.structure if relaxed else prepared.structure
    return CandidateResult(
        id=prepared.id,
        formula=prepared.formula,
        atoms=len(structure),
        n_li=int(structure.composition[S.MOBILE_ION]),
        ordering=prepared.ordering,
        ml=prepared.ml,
        relaxed={
            k: v for k, v in (relaxed.to_dict() if relaxed else {}).items() if k != "structure"
        },
        temperatures=temps,
        arrhenius=fit,
        incomplete=incomplete,
        problems=problems,
        potential=relaxed.potential if relaxed else None,
        potential_version=relaxed.potential_version if relaxed else None,
        cell=(RELAXED if relaxed.relax_cell else EXPERIMENTAL) if relaxed else None,
    )


def analyze_plan(md_dir: Path, plan: Plan) -> list[CandidateResult]:
    """Every candidate of the plan, analysed from its folder inside ``md_dir``."""
    return [analyze_candidate(Path(md_dir) / c, plan.protocol) for c in plan.candidates]


def results_document(plan: Plan, results: list[CandidateResult]) -> dict[str, Any]:
    """Everything, with MSD curves, as ``md_results.json`` keeps it for the report and cases."""
    return {
        "protocol": plan.protocol.to_dict(),
        "potential": plan.potential,
        "potential_version": plan.potential_version,
        "cell": plan.cell,
        "candidates": [r.to_dict() for r in results],
    }


def results_from_document(document: dict[str, Any]) -> list[CandidateResult]:
    return [CandidateResult.from_dict(c) for c in document["candidates"]]


def temperature_table(results: list[CandidateResult]) -> pd.DataFrame:
    """Per candidate and temperature: D, sigma, hops and flags."""
    rows = []
    for c in results:
        for t in c.temperatures:
            d = {k: v for k, v in t.to_dict().items() if k not in ("msd_dt_fs", "msd_a2")}
            rows.append({S.ID: c.id, S.FORMULA: c.formula, **d})
    return pd.DataFrame(rows)


def summary_table(results: list[CandidateResult], protocol: MDProtocol) -> pd.DataFrame:
    """Per candidate: Ea, sigma(300 K) and its interval, beside the ML prediction."""
    rows = []
    for c in results:
        a = c.arrhenius
        interval = a.sigma_300k_interval_ms_cm if a and a.sigma_300k_interval_ms_cm else None
        rows.append(
            {
                S.ID: c.id,
                S.FORMULA: c.formula,
                "md_protocol": protocol.name,
                "md_potential": c.potential,
                "md_potential_version": c.potential_version,
                "md_cell": c.cell,
                "md_low_statistics": protocol.low_statistics,
                "md_atoms": c.atoms,
                "md_li_hops": c.li_hops,
                "md_temperatures_k": " ".join(f"{t.temperature_k:g}" for t in c.temperatures),
                "md_status": a.status if a else "incomplete",
                "md_ea_ev": a.ea_ev if a else None,
                "md_ea_stderr_ev": a.ea_stderr_ev if a else None,
                "md_sigma_300k_ms_cm": a.sigma_300k_ms_cm if a else None,
                "md_sigma_300k_lower_ms_cm": interval[0] if interval else None,
                "md_sigma_300k_upper_ms_cm": interval[1] if interval else None,
                "md_sigma_300k_upper_bound_ms_cm": a.sigma_300k_upper_bound_ms_cm if a else None,
                S.PRED: c.ml[0] if c.ml else None,
                S.LOWER: c.ml[1] if c.ml else None,
                S.UPPER: c.ml[2] if c.ml else None,
                "md_notes": "; ".join(a.notes) if a else "",
            }
        )
    return pd.DataFrame(rows)


def summary_line(result: CandidateResult) -> str:
    """One line for a terminal: sigma(300 K) with its interval (or its bound), Ea ± its
    standard error and the hops seen; or the temperatures not finished."""
    r, a = result, result.arrhenius
    if a is None:
        pending = ", ".join(f"{t:g}" for t in r.incomplete)
        return f"{r.id:<24} {r.formula:<14} incomplete (not finished: {pending} K)"
    sigma = sigma_text(
        a.sigma_300k_ms_cm, a.sigma_300k_interval_ms_cm, a.sigma_300k_upper_bound_ms_cm
    )
    if a.sigma_300k_ms_cm is None:
        return (
            f"{r.id:<24} {r.formula:<14} σ(300 K) {sigma} mS/cm (upper bound; {r.li_hops} Li hops)"
        )
    return (
        f"{r.id:<24} {r.formula:<14} σ(300 K) {sigma} mS/cm, "
        f"Ea {ea_text(a.ea_ev, a.ea_stderr_ev)} eV, {r.li_hops} Li hops"
    )
