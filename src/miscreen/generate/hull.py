"""Generated candidates on the convex hull of their chemical system, with the potential that
relaxed them.

This is the default run's stability estimate (:func:`miscreen.screen.stability.
chgnet_e_above_hull`: the hull of the reference phases of the candidate's chemical system,
the phases it used recorded as ``hull_phases``, what it lacks as ``hull_warning``, elements
without an elemental phase fitted to DFT formation energies), called with an energy
calculator that relaxes every reference phase the way the candidates were relaxed (same
potential, criterion and limits; :func:`miscreen.generate.relax.relaxing_potential`), so
candidates and references both sit at the potential's own minimum. A candidate's energy is
its relaxation's; energies are cached per structure and setting in ``energies.sqlite``.

Reference phases: ``dft_hull`` keeps those with a DFT energy above the hull, as the default
run does; ``all`` adds the rows of the reference sources that carry none (e.g.
matbench-dielectric's; one cell per reduced formula, the smallest), so fewer phases are
missing from a hull (Li3PO4 and P2O5 for the LGPS oxygen analogues) at the cost of relaxing
more.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Structure

from miscreen import schema as S
from miscreen.generate.relax import RelaxSettings, relaxing_potential
from miscreen.screen.energies import EnergyCalculator, fingerprint
from miscreen.screen.stability import References, chgnet_e_above_hull

log = logging.getLogger(__name__)

DFT_HULL, ALL = "dft_hull", "all"
HULL_COLUMNS = (S.E_HULL, S.STABILITY_METHOD, S.HULL_PHASES, S.HULL_WARNING)


def reference_phases(table: pd.DataFrame, which: str = DFT_HULL) -> References:
    """The reference phases a hull may use: rows with a DFT energy above the hull
    (``dft_hull``), and with ``all`` also, per reduced formula, the smallest cell of the rows
    without one (with no energy to prefer a polymorph, the cheapest stands for them)."""
    given = table[S.E_HULL] if S.E_HULL in table else pd.Series(float("nan"), index=table.index)
    known = pd.to_numeric(given, errors="coerce").notna()
    if which == DFT_HULL:
        return References(table[known])
    rest = table[~known]
    sites = rest[S.STRUCTURE].map(_site_count)
    formula = References(rest).formula
    order = pd.DataFrame({"f": formula, "n": sites.to_numpy()}, index=rest.index)
    order = order[(order["f"] != "") & order["n"].notna()].sort_values("n", kind="stable")
    smallest = order[~order["f"].duplicated()].index
    return References(pd.concat([table[known], rest.loc[smallest]]))


def _site_count(text: object) -> float:
    """Sites of a structure's JSON text, counted without building it (NaN when unreadable)."""
    if not isinstance(text, str):
        return float("nan")
    return float(text.count('"abc"')) or float("nan")


def hull_calculator(settings: RelaxSettings, cache_dir: Path | None) -> EnergyCalculator:
    """Energies per atom after a relaxation with ``settings``, cached on disk."""
    return EnergyCalculator(relaxing_potential(settings), setting=settings.key, cache_dir=cache_dir)


def method_name(settings: RelaxSettings) -> str:
    """``<potential>_hull``, the ``stability_method`` of a generated row."""
    return f"{settings.potential}_hull"


def e_above_hull(
    cid: str,
    relaxed: Structure,
    energy_ev_per_atom: float,
    refs: References,
    calc: EnergyCalculator,
    method: str,
    exclude: Iterable[str] = (),
) -> tuple[float, str, str, str]:
    """(energy above the hull in eV/atom, ``stability_method``, ``hull_phases``,
    ``hull_warning``) of one relaxed candidate; ``exclude`` names reference phases left out
    (the known material a kept candidate is, so it is not placed against itself)."""
    calc.memory[fingerprint(relaxed)] = float(energy_ev_per_atom)
    try:
        value, phases, warning = chgnet_e_above_hull(cid, relaxed, refs, calc, exclude)
    except Exception as exc:  # one odd structure must not stop the table
        log.warning("generate: hull of %s failed: %s", cid, exc)
        return float("nan"), f"none: {type(exc).__name__}: {exc}"[:200], "", ""
    return value, method if np.isfinite(value) else "none: incomplete hull", phases, warning
