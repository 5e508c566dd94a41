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
matbench-dielectric's, or OBELiX's measured CIFs; one cell per reduced formula, an ordered
one first, then the fewest atoms), so fewer phases are missing from a hull (Li3PO4 and P2O5
for the LGPS oxygen analogues, Li3PS4 and Li4GeS4 for the sulfides) at the cost of relaxing
more. A disordered one of those (most measured CIFs) is ordered when a hull first asks for
it (:class:`OrderedReferences`, :func:`miscreen.verify.md_ordering.order_structure`); one
that cannot be ordered, or has more than :data:`MAX_REFERENCE_ATOMS` atoms, is left out and
named in the ``hull_warning`` of the rows whose system holds it. A reference without a DFT
energy that has the candidate's reduced formula is left out of the candidate's hull: it is
the same compound as measured (OBELiX's Li10GeP2S12 for the generated Li10GeP2S12), ordered
differently, or a polymorph nothing ranks, and the candidate would be placed against itself.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Composition, Structure

from miscreen import schema as S
from miscreen.generate.relax import RelaxSettings, relaxing_potential
from miscreen.screen.energies import EnergyCalculator, fingerprint
from miscreen.screen.stability import References, chgnet_e_above_hull
from miscreen.verify.md_ordering import (
    MAX_ORDER_MULTIPLIER,
    OCCUPANCY_TOLERANCE,
    order_structure,
)
from miscreen.verify.md_protocol import MDError

log = logging.getLogger(__name__)

DFT_HULL, ALL = "dft_hull", "all"
HULL_COLUMNS = (S.E_HULL, S.STABILITY_METHOD, S.HULL_PHASES, S.HULL_WARNING)
# A reference cell is relaxed like a candidate (tens of seconds for 50 atoms on one CPU
# thread, growing faster than linearly): the off-stoichiometric solid solutions of OBELiX
# (Li3.25Ge0.25P0.75S4, 50 atoms ordered) stay, supercells of a hundred atoms and more do not.
MAX_REFERENCE_ATOMS = 100
COMPOSITION_TOLERANCE = 0.02  # atomic fraction, as the OBELiX loader's check
FULL_OCCUPANCY = 0.9  # a site of one element this full is taken as full before ordering
_OCCUPANCY = re.compile(r'"occu":\s*([-+0-9.eE]+)')


class OrderedReferences(References):
    """Reference phases whose disordered structures without a DFT energy are ordered when a
    hull first asks for them (the lowest-Ewald-energy ordering of ``verify md``, with its
    caps), so the potential can evaluate them; ``left_out`` names, by id, the ones that
    cannot be ordered or have more than ``max_atoms`` atoms (ordered or not), with the
    reason."""

    def __init__(self, table: pd.DataFrame, max_atoms: int = MAX_REFERENCE_ATOMS) -> None:
        super().__init__(table)
        self.max_atoms = max_atoms
        self.left_out: dict[str, str] = {}
        self._ordered: dict[int, Structure | None] = {}

    def structure(self, i: int) -> Structure | None:
        if i not in self._ordered:
            self._ordered[i] = self._order(i, super().structure(i))
        return self._ordered[i]

    def _order(self, i: int, structure: Structure | None) -> Structure | None:
        if structure is None or np.isfinite(self.value(i, S.E_HULL)):
            return structure
        rid, atoms = self.ids[i], structure.composition.num_atoms
        if disagreement := _disagrees(structure.composition, self.table.at[i, S.COMPOSITION]):
            return self._leave_out(rid, disagreement)
        if atoms > self.max_atoms:
            return self._leave_out(rid, f"{atoms:.0f} atoms > {self.max_atoms}")
        if structure.is_ordered:
            return structure
        if self.max_atoms < (cell := ordered_size(structure)) < float("inf"):
            return self._leave_out(rid, f"{cell:.0f} atoms once ordered > {self.max_atoms}")
        try:
            ordered = order_structure(_filled(structure))
        except MDError as exc:
            return self._leave_out(rid, f"cannot be ordered: {exc}")
        except Exception as exc:  # pymatgen's enumeration fails on some CIFs (IndexError)
            return self._leave_out(rid, f"cannot be ordered: {type(exc).__name__}: {exc}")
        if len(ordered.structure) > self.max_atoms:
            return self._leave_out(
                rid, f"{len(ordered.structure)} atoms ordered > {self.max_atoms}"
            )
        log.info("reference %s (%s) ordered: %s, %d atoms", rid, self.formula[i],
                 ordered.method, len(ordered.structure))  # fmt: skip
        return ordered.structure

    def _leave_out(self, rid: str, reason: str) -> None:
        self.left_out[rid] = reason
        log.warning("generate: reference phase %s left out of the hulls: %s", rid, reason)
        return None

    def left_out_within(self, elements: frozenset[str]) -> list[str]:
        """``<id> <formula> (<reason>)`` for the phases of ``elements`` left out so far."""
        return [
            f"{self.ids[i]} {self.formula[i]} ({self.left_out[self.ids[i]]})"
            for i in self.within(elements)
            if self.ids[i] in self.left_out
        ]

    def same_formula_unranked(self, formula: str) -> list[str]:
        """Ids of the rows without a DFT energy whose reduced formula is ``formula``."""
        return [
            rid
            for i, rid in enumerate(self.ids)
            if self.formula[i] == formula and not np.isfinite(self.value(i, S.E_HULL))
        ]


def _disagrees(cell: Composition, given: object) -> str:
    """Why a structure does not stand for its row: its composition differs from the row's
    by more than :data:`COMPOSITION_TOLERANCE` in an atomic fraction (OBELiX's Li4SiS4
    comes with a CIF of SiS4); '' when it agrees."""
    try:
        row = Composition(str(given)).fractional_composition
    except (ValueError, KeyError, TypeError):
        return ""
    mine = cell.fractional_composition
    elements = set(row.elements) | set(mine.elements)
    if max(abs(row[el] - mine[el]) for el in elements) <= COMPOSITION_TOLERANCE:
        return ""
    return f"its structure is {cell.reduced_formula}, its row {row.reduced_formula}"


def ordered_size(structure: Structure) -> float:
    """About how many atoms the ordered cell of ``structure`` has, found before ordering it
    (which can take minutes): its atoms times the smallest multiple of the cell, up to
    :data:`~miscreen.verify.md_ordering.MAX_ORDER_MULTIPLIER`, in which each group of
    identically occupied sites holds whole atoms of every species within
    :data:`~miscreen.verify.md_ordering.OCCUPANCY_TOLERANCE` (as the ordering rounds them);
    infinite when none does (the ordering then says why)."""
    groups: list[Composition] = []  # per group: the exemplar site's species, summed
    exemplars: list[Composition] = []
    for site in structure:
        if site.is_ordered:
            continue
        for g, exemplar in enumerate(exemplars):
            if site.species.almost_equals(exemplar):
                groups[g] += site.species
                break
        else:
            exemplars.append(site.species)
            groups.append(Composition(site.species))
    totals = [amount for group in groups for amount in group.values()]
    for m in range(1, MAX_ORDER_MULTIPLIER + 1):
        if all(abs(m * t - round(m * t)) <= OCCUPANCY_TOLERANCE for t in totals):
            return m * structure.composition.num_atoms
    return float("inf")


def _filled(structure: Structure, at_least: float = FULL_OCCUPANCY) -> Structure:
    """``structure`` with the sites of one element at occupancy ``at_least`` or more made
    full: a refined occupancy of 0.97 (OBELiX's Li3PS4) is a full site in any ordered cell,
    and pymatgen's enumeration fails on a group with no vacancy left to place."""
    out = structure.copy()
    for i, site in enumerate(structure):
        if len(site.species) == 1 and not site.is_ordered:
            element, amount = next(iter(site.species.items()))
            if amount >= at_least:
                out.replace(i, element)
    return out


def reference_phases(table: pd.DataFrame, which: str = DFT_HULL) -> OrderedReferences:
    """The reference phases a hull may use: rows with a DFT energy above the hull
    (``dft_hull``), and with ``all`` also, per reduced formula, one cell of the rows without
    one: an ordered cell first, then the one with the fewest atoms (with no energy to prefer
    a polymorph, the cheapest stands for them; ordering a disordered cell can multiply it)."""
    given = table[S.E_HULL] if S.E_HULL in table else pd.Series(float("nan"), index=table.index)
    known = pd.to_numeric(given, errors="coerce").notna()
    if which == DFT_HULL:
        return OrderedReferences(table[known])
    rest = table[~known]
    sizes = [_cell_size(text) for text in rest[S.STRUCTURE]]
    formula = References(rest).formula
    order = pd.DataFrame(
        {"f": formula, "disordered": [d for d, _ in sizes], "n": [n for _, n in sizes]},
        index=rest.index,
    )
    order = order[(order["f"] != "") & order["n"].notna()]
    order = order.sort_values(["disordered", "n"], kind="stable")
    chosen = order[~order["f"].duplicated()].index.sort_values()
    return OrderedReferences(pd.concat([table[known], rest.loc[chosen]]))


def _cell_size(text: object) -> tuple[bool, float]:
    """(whether a site is partly occupied, atoms in the cell) of a structure's JSON text,
    read without building it: the sum of the occupancies, else the sites (NaN when
    unreadable)."""
    if not isinstance(text, str):
        return False, float("nan")
    occupancies = [float(x) for x in _OCCUPANCY.findall(text)]
    if not occupancies:
        return False, float(text.count('"abc"')) or float("nan")
    return any(abs(x - 1.0) > 1e-6 for x in occupancies), float(sum(occupancies))


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
    (the known material a kept candidate is, so it is not placed against itself), and so are
    the references without a DFT energy that have the candidate's reduced formula. The
    warning names those (the value then compares the candidate with other compositions
    only, not with its known polymorphs) and the phases of the system that could not be
    ordered."""
    calc.memory[fingerprint(relaxed)] = float(energy_ev_per_atom)
    skip, own = list(exclude), []
    if isinstance(refs, OrderedReferences):
        own = refs.same_formula_unranked(relaxed.composition.reduced_formula)
        skip += own
    try:
        value, phases, warning = chgnet_e_above_hull(cid, relaxed, refs, calc, skip)
    except Exception as exc:  # one odd structure must not stop the table
        log.warning("generate: hull of %s failed: %s", cid, exc)
        return float("nan"), f"none: {type(exc).__name__}: {exc}"[:200], "", ""
    if isinstance(refs, OrderedReferences):
        elements = frozenset(e.symbol for e in relaxed.composition.elements)
        if left := refs.left_out_within(elements):
            warning = "; ".join(filter(None, [warning, "left out: " + ", ".join(left)]))
    if own:
        note = f"own formula without a DFT energy left out ({', '.join(own)}): no polymorph ranked"
        warning = "; ".join(filter(None, [warning, note]))
    return value, method if np.isfinite(value) else "none: incomplete hull", phases, warning
