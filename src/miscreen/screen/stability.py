"""Stability for every candidate: the source's energy above the hull where it gives one, else
an estimate with its method (``stability_method``).

Routes, first that applies:

1. ``source``: the row's own ``e_above_hull``.
2. ``matched:<id>``: a reference phase with a known ``e_above_hull``, the same reduced formula
   and a structure ``StructureMatcher`` matches; its value.
3. ``chgnet_hull``: the CHGNet (0.3.0, the weights in the wheel) energy of the given
   structure, single point or a relaxation of at most ``relax_steps`` FIRE steps, against
   the convex hull (``pymatgen.analysis.phase_diagram.PhaseDiagram``) of the reference
   phases of its chemical system evaluated with the same potential and the same steps.

Corrections: CHGNet was trained on MPtrj energies with the Materials Project 2020 anion and
GGA/GGA+U mixing corrections already applied, so its energies are on the MP2020-compatible
scale and are used as they are; applying ``MaterialsProject2020Compatibility`` again would
count the corrections twice. ``benchmarks/stability.py`` checks this with CHGNet formation
energies against the snapshot's DFT ones (corrected by MP's legacy scheme): mean signed
difference -0.02 eV/atom for 144 oxides, +0.01 for chlorides and nitrides, where both
schemes correct alike (uncorrected, an oxide would sit 0.2-0.4 eV/atom higher), and -0.18
to -0.29 for bromides, iodides, selenides and tellurides, which only MP2020 corrects.

Each row records the ids of the reference phases on the hull it was scored against
(``hull_phases``) and what a chemist would expect that the hull lacks (``hull_warning``): an
element without an elemental phase, or no phase at all with 2, 3, ... elements in a larger
system. An element without an elemental phase gets an energy fitted to the DFT formation
energies of the system's phases holding it (:func:`fitted_elemental_energies`, id
``fitted:<el>``; for Br, I, Se, Te that carries the legacy-scheme offset above), else to up
to three binaries elsewhere in the references (:func:`anchored_elemental_energies`); with
none, a placeholder far above every phase keeps it out of the hull, which is then that of
the known compounds (NaN for a structure outside what they span). Energies are cached on
disk per structure fingerprint and setting (``energies.sqlite``, beside the feature cache;
:mod:`miscreen.screen.energies`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

import numpy as np
import pandas as pd
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, Structure
from pymatgen.entries.computed_entries import ComputedEntry

from miscreen import schema as S
from miscreen.fetch.parsing import check_structure, structure_from_json
from miscreen.screen.energies import EnergyCalculator

log = logging.getLogger(__name__)

SOURCE = "source"
MATCHED = "matched"
CHGNET_HULL = "chgnet_hull"
FORMATION_ENERGY = "formation_energy_per_atom"
ANCHORS = 3  # binary compounds that fix an element's energy when its system cannot
OUTSIDE = "outside what the known compounds span"
UNBOUND = "unbound"  # a placeholder elemental phase that never takes part in a hull
UNBOUND_EV_PER_ATOM = 50.0  # how far above every phase it sits
# below this a potential's energy means nothing (no Materials Project phase is below about
# -14 eV/atom; a collapsed relaxation gave -8,400): such a phase is left out of the hull
LOWEST_EV_PER_ATOM = -25.0
HULL_MAX_E_ABOVE_HULL = 0.1  # eV/atom: reference phases farther above the DFT hull stay out
ARITY = {2: "binary", 3: "ternary", 4: "quaternary", 5: "quinary"}


class References:
    """Reference phases (a records table: id, composition, structure, and where known
    ``e_above_hull`` and ``formation_energy_per_atom``), parsed lazily and indexed."""

    def __init__(self, table: pd.DataFrame) -> None:
        self.table = table.reset_index(drop=True)
        comps = [_composition(c) for c in self.table[S.COMPOSITION]]
        self.elements = [
            frozenset(e.symbol for e in c.elements) if c else frozenset() for c in comps
        ]
        self.formula = [c.reduced_formula if c else "" for c in comps]
        self.ids = self.table[S.ID].astype(str).tolist()
        self._structures: dict[int, Structure | None] = {}
        self._elemental: dict[str, int] | None = None
        self._anchors: dict[str, list[int]] = {}

    def structure(self, i: int) -> Structure | None:
        if i not in self._structures:
            self._structures[i] = _structure(self.table.at[i, S.STRUCTURE])
        return self._structures[i]

    def within(self, elements: frozenset[str], exclude: Iterable[str] = ()) -> list[int]:
        """Rows whose elements all lie in ``elements``, less the ids in ``exclude``."""
        skip = set(exclude)
        return [
            i
            for i, els in enumerate(self.elements)
            if els and els <= elements and self.ids[i] not in skip
        ]

    def on_hull(self, i: int) -> bool:
        """Whether row ``i`` may build a hull: unless its DFT energy above the hull is known
        to exceed :data:`HULL_MAX_E_ABOVE_HULL` (a phase farther up cannot shape a hull
        within the potential's error, and would cost an evaluation)."""
        return not self.value(i, S.E_HULL) > HULL_MAX_E_ABOVE_HULL

    def elemental_phases(self) -> dict[str, int]:
        """Element -> the row of its elemental phase closest to the DFT hull (hull phases
        with an ordered structure only)."""
        if self._elemental is None:
            best: dict[str, int] = {}
            for i, els in enumerate(self.elements):
                if len(els) != 1 or not self.on_hull(i):
                    continue
                el = next(iter(els))
                better = el not in best or self.value(i, S.E_HULL) < self.value(best[el], S.E_HULL)
                if better and (s := self.structure(i)) is not None and s.is_ordered:
                    best[el] = i
            self._elemental = best
        return self._elemental

    def binary_anchors(self, element: str) -> list[int]:
        """Rows of binary compounds of ``element`` with a DFT formation energy whose other
        element has an elemental phase (ordered hull phases only), closest to the DFT hull
        then fewest atoms first; found once per element."""
        if element not in self._anchors:
            elemental = self.elemental_phases()
            rows = [
                i
                for i, els in enumerate(self.elements)
                if len(els) == 2 and element in els and next(iter(els - {element})) in elemental
                and np.isfinite(self.value(i, FORMATION_ENERGY)) and self.on_hull(i)
                and (s := self.structure(i)) is not None and s.is_ordered
            ]  # fmt: skip
            e_hull = {i: np.nan_to_num(self.value(i, S.E_HULL), nan=1.0) for i in rows}
            rows.sort(key=lambda i: (e_hull[i], len(self.structure(i))))  # type: ignore[arg-type]
            self._anchors[element] = rows
        return self._anchors[element]

    def value(self, i: int, column: str) -> float:
        return S.as_float(self.table.at[i, column]) if column in self.table else float("nan")


def _composition(text: object) -> Composition | None:
    try:
        comp = Composition(str(text))
    except (ValueError, KeyError, TypeError, OverflowError):
        return None
    return comp if comp.num_atoms > 0 else None


def _structure(value: object) -> Structure | None:
    if isinstance(value, Structure):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        structure = structure_from_json(value)
        check_structure(structure)
    except (ValueError, KeyError, TypeError):
        return None
    return structure


_MATCHER = StructureMatcher()


def match_known(structure: Structure, refs: References, exclude: Iterable[str] = ()) -> str:
    """The id of a reference phase with a known ``e_above_hull`` that is this structure
    (same reduced formula, ``StructureMatcher`` match); '' when none."""
    formula = structure.composition.reduced_formula
    skip = set(exclude)
    for i, f in enumerate(refs.formula):
        if f != formula or refs.ids[i] in skip or np.isnan(refs.value(i, S.E_HULL)):
            continue
        other = refs.structure(i)
        if other is not None and _MATCHER.fit(structure, other):
            return refs.ids[i]
    return ""


def hull_warning(elements: frozenset[str], phases: list[frozenset[str]]) -> str:
    """What the reference phases lack for a hull of ``elements``: elemental phases, or any
    phase with 2, 3, ... elements (up to the system's size); '' when nothing is missing."""
    notes = [f"no elemental {el}" for el in sorted(elements) if frozenset({el}) not in phases]
    sizes = {len(p) for p in phases}
    for k in range(2, len(elements) + 1):
        if k not in sizes:
            notes.append(f"no {ARITY.get(k, f'{k}-element')} phase")
    return "; ".join(notes)


def fitted_elemental_energies(
    missing: Iterable[str], rows: list[int], refs: References, energies: dict[str, float]
) -> dict[str, tuple[float, int]]:
    """For the elements without an elemental phase: the energies per atom that make the
    potential's formation energies of the ``rows`` match their DFT
    ``formation_energy_per_atom`` best (least squares over every such phase, all missing
    elements at once, so a system lacking both of its elements, Li-S, is fitted from its
    compounds), each with how many phases hold it. Left out when the phases do not
    determine it (fewer independent compositions than missing elements)."""
    missing = sorted(set(missing))
    mu: dict[str, float] = {}
    for i in rows:
        if len(refs.elements[i]) == 1:
            el = next(iter(refs.elements[i]))
            mu[el] = min(mu.get(el, np.inf), energies[refs.ids[i]])
    lhs, rhs = [], []
    for i in rows:
        ef = refs.value(i, FORMATION_ENERGY)
        if not np.isfinite(ef) or not refs.elements[i] & set(missing):
            continue
        if not refs.elements[i] <= mu.keys() | set(missing):
            continue
        comp = Composition(refs.table.at[i, S.COMPOSITION]).fractional_composition
        known = sum(x * mu[e.symbol] for e, x in comp.items() if e.symbol in mu)
        lhs.append([comp[el] for el in missing])
        rhs.append(energies[refs.ids[i]] - ef - known)
    if not lhs:
        return {}
    matrix = np.asarray(lhs, dtype=float)
    held = matrix.any(axis=0)
    solved, _, rank, _ = np.linalg.lstsq(matrix[:, held], np.asarray(rhs), rcond=None)
    if rank < held.sum():
        return {}
    names = [el for el, h in zip(missing, held, strict=True) if h]
    counts = (matrix[:, held] > 0).sum(axis=0)
    return {el: (float(v), int(n)) for el, v, n in zip(names, solved, counts, strict=True)}


def anchored_elemental_energies(
    missing: Iterable[str], refs: References, calc: EnergyCalculator, exclude: Iterable[str] = ()
) -> dict[str, tuple[float, list[str]]]:
    """For elements that the phases of a chemical system cannot fix: the energy per atom
    that makes the potential's formation energies of up to :data:`ANCHORS` binary compounds
    of the element, from anywhere in the references, match their DFT formation energies (the
    median), each compound's other element taken from its elemental phase; with the ids
    used. Compounds closest to the DFT hull, then with the fewest atoms, come first."""
    skip = set(exclude)
    elemental = refs.elemental_phases()
    out: dict[str, tuple[float, list[str]]] = {}
    for el in sorted(missing):
        anchors = [i for i in refs.binary_anchors(el) if refs.ids[i] not in skip][:ANCHORS]
        if not anchors:
            continue
        partners = {next(iter(refs.elements[i] - {el})) for i in anchors}
        wanted = [*anchors, *(elemental[x] for x in partners)]
        energies = calc.energies({refs.ids[i]: refs.structure(i) for i in wanted})  # type: ignore[misc]
        values = []
        for i in anchors:
            other = next(iter(refs.elements[i] - {el}))
            comp = Composition(refs.table.at[i, S.COMPOSITION]).fractional_composition
            mu_other = energies[refs.ids[elemental[other]]]
            ef = refs.value(i, FORMATION_ENERGY)
            if plausible(mu_other) and plausible(energies[refs.ids[i]]):
                values.append((energies[refs.ids[i]] - ef - comp[other] * mu_other) / comp[el])
        if values:
            out[el] = (float(np.median(values)), [refs.ids[i] for i in anchors])
    return out


def with_note(warning: str, element: str, note: str) -> str:
    """``warning`` with its "no elemental <element>" entry replaced by ``note`` (and no
    other: "no elemental S" must not touch "no elemental Se")."""
    return re.sub(rf"no elemental {element}(?=;|$)", note, warning)


def plausible(energy_ev_per_atom: float) -> bool:
    """Whether a potential's energy per atom can enter a hull (finite, not absurdly low)."""
    return bool(np.isfinite(energy_ev_per_atom) and energy_ev_per_atom > LOWEST_EV_PER_ATOM)


def chgnet_e_above_hull(
    rid: str,
    structure: Structure,
    refs: References,
    calc: EnergyCalculator,
    exclude: Iterable[str] = (),
) -> tuple[float, str, str]:
    """(energy above the hull in eV/atom, ids of the hull's reference phases, warning) of a
    structure against the reference phases of its chemical system, all with ``calc``.

    An element without an elemental phase gets an energy fitted to the DFT formation
    energies of the phases that hold it (:func:`fitted_elemental_energies`; id
    ``fitted:<el>``, and the warning says so), else to binaries elsewhere in the references
    (:func:`anchored_elemental_energies`; ``exclude`` applies there too). When neither
    allows it, the element gets a
    placeholder far above every phase (id ``unbound:<el>``), so the hull is that of the
    compounds alone: exact for a structure that decomposes into compounds only (a polymorph
    of a known compound, or a mix of known compounds), NaN when its decomposition needs the
    placeholder (it lies outside what the compounds span). A phase without a plausible
    energy (NaN, or below ``LOWEST_EV_PER_ATOM``: a failed or collapsed relaxation) is left
    out and named in the warning; so is the structure's own: NaN."""
    elements = frozenset(e.symbol for e in structure.composition.elements)
    rows = [i for i in refs.within(elements, exclude) if refs.ids[i] != rid and refs.on_hull(i)]
    rows = [i for i in rows if (s := refs.structure(i)) is not None and s.is_ordered]
    energies = calc.energies(
        {**{refs.ids[i]: refs.structure(i) for i in rows}, rid: structure}  # type: ignore[dict-item]
    )
    if not plausible(energies[rid]):
        return float("nan"), "", f"no plausible energy ({energies[rid]:.4g} eV/atom)"
    bad = [refs.ids[i] for i in rows if not plausible(energies[refs.ids[i]])]
    rows = [i for i in rows if refs.ids[i] not in bad]
    warning = hull_warning(elements, [refs.elements[i] for i in rows])
    if bad:
        warning = "; ".join(filter(None, [warning, "no plausible energy: " + ", ".join(bad)]))
    structures = {refs.ids[i]: refs.structure(i) for i in rows}
    entries = [
        ComputedEntry(s.composition, energies[i] * len(s), entry_id=i)  # type: ignore[union-attr]
        for i, s in structures.items()
    ]
    have = {e for i in rows if len(refs.elements[i]) == 1 for e in refs.elements[i]}
    missing = elements - have
    if missing:
        fitted = fitted_elemental_energies(missing, rows, refs, energies)
        for el, (mu, count) in fitted.items():
            entries.append(ComputedEntry(Composition(el), mu, entry_id=f"fitted:{el}"))
            note = f"no elemental {el} (fitted to {count} DFT formation energies)"
            warning = with_note(warning, el, note)
        anchored = anchored_elemental_energies(missing - fitted.keys(), refs, calc, [rid, *exclude])
        for el, (mu, ids) in anchored.items():
            entries.append(ComputedEntry(Composition(el), mu, entry_id=f"fitted:{el}"))
            note = f"no elemental {el} (fitted to the DFT formation energies of {', '.join(ids)})"
            warning = with_note(warning, el, note)
        fitted |= {el: (mu, len(ids)) for el, (mu, ids) in anchored.items()}
        ceiling = max(energies[i] for i in [*structures, rid]) + UNBOUND_EV_PER_ATOM
        for el in sorted(missing - fitted.keys()):
            entries.append(ComputedEntry(Composition(el), ceiling, entry_id=f"{UNBOUND}:{el}"))
    mine = ComputedEntry(structure.composition, energies[rid] * len(structure), entry_id=rid)
    diagram = PhaseDiagram(entries)  # without the structure: its decomposition into others
    decomposition, e_hull = diagram.get_decomp_and_e_above_hull(mine, allow_negative=True)
    if any(str(e.entry_id).startswith(UNBOUND) for e in decomposition):
        return float("nan"), "", "; ".join(filter(None, [warning, OUTSIDE]))
    on_hull = sorted(
        {str(e.entry_id) for e in diagram.stable_entries if e.entry_id != rid}
        - {f"{UNBOUND}:{el}" for el in missing}
    )
    return max(float(e_hull), 0.0), ",".join(on_hull), warning


def dft_e_above_hull(
    composition: Composition,
    formation_energy_per_atom: float,
    refs: References,
    exclude: Iterable[str] = (),
) -> tuple[float, str]:
    """(energy above the hull in eV/atom, ids of the hull's phases) from DFT formation energies:
    the reference phases with a known ``formation_energy_per_atom`` as ``PDEntry``, every
    element at 0 eV/atom."""
    elements = frozenset(e.symbol for e in composition.elements)
    entries = [PDEntry(Composition(el), 0.0, name=el) for el in sorted(elements)]
    for i in refs.within(elements, exclude):
        ef = refs.value(i, FORMATION_ENERGY)
        if np.isfinite(ef) and len(refs.elements[i]) > 1:
            comp = Composition(refs.table.at[i, S.COMPOSITION])
            entries.append(PDEntry(comp, ef * comp.num_atoms, name=refs.ids[i]))
    mine = PDEntry(composition, formation_energy_per_atom * composition.num_atoms, name="row")
    diagram = PhaseDiagram([*entries, mine])
    e_hull = float(diagram.get_e_above_hull(mine, allow_negative=True))
    on_hull = sorted(e.name for e in diagram.stable_entries if e.name != "row")
    return max(e_hull, 0.0), ",".join(on_hull)


def stability_table(
    records: pd.DataFrame,
    references: pd.DataFrame,
    calc: EnergyCalculator | None = None,
) -> pd.DataFrame:
    """Per record (same index): ``e_above_hull`` (eV/atom), ``stability_method``,
    ``hull_phases`` and ``hull_warning``. ``references`` is the snapshots' records table,
    with a user's own reference phases appended; ``calc`` None: no CHGNet route (the method
    then says why a row has no estimate)."""
    refs = References(references)
    out = []
    for row in records.to_dict("records"):
        out.append(_stability_row(row, refs, calc))
    cols = [S.E_HULL, S.STABILITY_METHOD, S.HULL_PHASES, S.HULL_WARNING]
    return pd.DataFrame(out, columns=cols, index=records.index)


def _stability_row(row: dict, refs: References, calc: EnergyCalculator | None) -> tuple:
    given = S.as_float(row.get(S.E_HULL))
    if np.isfinite(given):
        return given, SOURCE, "", ""
    structure = _structure(row.get(S.STRUCTURE))
    if structure is None:
        return float("nan"), "none: no structure", "", ""
    rid = str(row.get(S.ID))
    try:
        hit = match_known(structure, refs, exclude=[rid])
    except (ValueError, RuntimeError) as exc:
        log.warning("stability: matching %s failed: %s", rid, exc)
        hit = ""
    if hit:
        return refs.value(refs.ids.index(hit), S.E_HULL), f"{MATCHED}:{hit}", hit, ""
    if calc is None:
        return float("nan"), "none: no match and no potential", "", ""
    if not structure.is_ordered:
        return float("nan"), "none: disordered structure (no potential energy)", "", ""
    try:
        e_hull, phases, warning = chgnet_e_above_hull(rid, structure, refs, calc)
    except Exception as exc:  # one odd structure must not stop the table
        log.warning("stability: %s failed: %s", rid, exc)
        return float("nan"), f"none: {type(exc).__name__}: {exc}"[:200], "", ""
    method = CHGNET_HULL if np.isfinite(e_hull) else "none: incomplete hull"
    return e_hull, method, phases, warning
