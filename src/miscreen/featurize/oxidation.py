"""Oxidation states per element, guessed once per structure with a budget and a fallback.

Method order (the one used is recorded):

1. ``given``: every species already carries an oxidation state (e.g. from the CIF).
2. ``pymatgen``: the most probable guess of ``Composition.oxi_state_guesses`` on the reduced
   integer formula, only within the budget (at most ``MAX_GUESS_ATOMS`` atoms and
   ``MAX_GUESS_ELEMENTS`` elements, integer amounts): the guesser is combinatorial and takes
   minutes on large disordered formulas. Its first answer is found by the same search
   (:func:`most_probable`), with each element's table of sums and ICSD scores built once
   per (element, count) instead of once per formula: pymatgen rebuilt it for every formula,
   a third of the ``full`` preset's time on distinct formulas.
3. ``electronegativity``: the most electronegative element and every halogen, chalcogen and
   N present are anions with their most negative common state; Li is +1 and the other
   cations share the remaining positive charge in proportion to their highest common state,
   each capped at the highest state it is known in. A composition with more anion charge
   than its cations can carry (an O/F site written as two full sites in a CIF, for example)
   is left unbalanced rather than given Nb+23.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache
from itertools import combinations_with_replacement, product
from pathlib import Path

import yaml
from pymatgen.core import Composition, Element, Species
from pymatgen.core import composition as composition_module

MAX_GUESS_ATOMS = 24
MAX_GUESS_ELEMENTS = 5
ANION_FORMERS = frozenset({"N", "O", "S", "Se", "Te", "F", "Cl", "Br", "I"})
METHODS = ("given", "pymatgen", "electronegativity")


@dataclass(frozen=True)
class Oxidation:
    """Oxidation state per element symbol and the method that produced it."""

    states: dict[str, float]
    method: str

    @property
    def anions(self) -> frozenset[str]:
        return frozenset(el for el, q in self.states.items() if q < 0)


def guess(composition: Composition, given: dict[str, float] | None = None) -> Oxidation:
    """Oxidation states for ``composition`` (element amounts), trying methods in order."""
    if given and set(given) >= {el.symbol for el in composition.elements}:
        if any(q < 0 for q in given.values()):
            return Oxidation(dict(given), "given")
    elements = composition.element_composition
    amounts = tuple(sorted((el.symbol, float(a)) for el, a in elements.items()))
    states = _pymatgen_guess(amounts)
    if states is not None:
        return Oxidation(states, "pymatgen")
    return Oxidation(_electronegativity_guess(amounts), "electronegativity")


@lru_cache(maxsize=4096)
def _pymatgen_guess(amounts: tuple[tuple[str, float], ...]) -> dict[str, float] | None:
    """pymatgen's charge-balanced guess, or None when outside the budget or unbalanced."""
    comp = Composition(dict(amounts)).reduced_composition
    if len(comp) > MAX_GUESS_ELEMENTS or comp.num_atoms > MAX_GUESS_ATOMS:
        return None
    if any(abs(a - round(a)) > 1e-6 for a in comp.values()):
        return None
    best = most_probable(comp)
    if best is None or not any(q < 0 for q in best.values()):
        return None
    return {el: float(q) for el, q in best.items()}


def most_probable(comp: Composition) -> dict[str, float] | None:
    """The first guess ``comp.oxi_state_guesses(max_sites=-MAX_GUESS_ATOMS)`` returns (None
    when it returns none or raises), by pymatgen's own search: every charge-balanced choice
    of one sum per element, in ``itertools.product`` order, scored by the summed ICSD
    counts of each sum's best combination; the first of the highest scores wins, as in
    pymatgen's stable sort. A single element is neutral (pymatgen's answer, 0)."""
    comp = comp.reduced_composition
    if len(comp.elements) == 1:
        return {comp.elements[0].symbol: 0.0}
    if comp.num_atoms > MAX_GUESS_ATOMS or not all(a == int(a) for a in comp.values()):
        return None
    el_amt = comp.get_el_amt_dict()
    tables = [_element_sums(el, int(n)) for el, n in el_amt.items()]
    best, best_score = None, 0
    for x in product(*(t[0] for t in tables)):
        if sum(x) == 0:
            score = 0
            for (_, scores), v in zip(tables, x, strict=True):
                score += scores[v]
            if best is None or score > best_score:
                best, best_score = x, score
    if best is None:
        return None
    return {el: v / el_amt[el] for el, v in zip(el_amt, best, strict=True)}


@cache
def _element_sums(symbol: str, count: int) -> tuple[tuple[int, ...], dict[int, int]]:
    """pymatgen's table for ``count`` atoms of an element: the possible sums of their
    oxidation states (ICSD states, else common ones) in first-seen order, and per sum the
    highest ICSD occurrence score of a combination giving it."""
    el = Element(symbol)
    oxids = el.icsd_oxidation_states or el.common_oxidation_states
    prob = {o: _occurrence(symbol, o) for o in oxids}
    sums: dict[int, int] = {}  # insertion-ordered: first-seen order, as pymatgen's list
    for combo in combinations_with_replacement(oxids, count):
        total = sum(combo)
        score = sum(prob[o] for o in combo)
        if total not in sums or score > sums[total]:
            sums[total] = score
    return tuple(sums), sums


def _occurrence(symbol: str, state: int) -> int:
    """ICSD occurrence count of an oxidation state (pymatgen's ``Composition.oxi_prob``)."""
    return _icsd_occurrence().get(Species(symbol, state), 0)


@cache
def _icsd_occurrence() -> dict[Species, int]:
    """The table pymatgen's guesser scores with (``icsd_bv.yaml``, read as it reads it into
    ``Composition.oxi_prob``), parsed by libyaml: 0.1 s per process instead of 1.5 s."""
    path = Path(composition_module.__file__).with_name("icsd_bv.yaml")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open(encoding="utf-8") as fh:
        data = yaml.load(fh, Loader=loader)  # a safe loader
    return {Species.from_str(sp): count for sp, count in data["occurrence"].items()}


@lru_cache(maxsize=4096)
def _electronegativity_guess(amounts: tuple[tuple[str, float], ...]) -> dict[str, float]:
    """Charge-balanced states from electronegativity and common states (never fails)."""
    els = {sym: Element(sym) for sym, _ in amounts}
    amt = dict(amounts)
    most = max(els, key=lambda s: _x(els[s]))
    anions = {s for s in els if s in ANION_FORMERS or s == most} if len(els) > 1 else set()
    states: dict[str, float] = {}
    for s in anions:
        neg = [q for q in els[s].common_oxidation_states if q < 0] or [
            q for q in els[s].oxidation_states if q < 0
        ]
        states[s] = float(min(neg)) if neg else -1.0
    negative = -sum(states[s] * amt[s] for s in anions)
    cations = [s for s in els if s not in anions]
    if "Li" in cations:
        states["Li"] = 1.0
        negative -= amt["Li"]
    others = [s for s in cations if s != "Li"]
    nominal = {s: float(max(els[s].common_oxidation_states or (1,))) for s in others}
    total = sum(nominal[s] * amt[s] for s in others)
    scale = negative / total if total > 0 else 0.0
    for s in others:
        highest = float(max(els[s].oxidation_states or (nominal[s],)))
        states[s] = min(max(nominal[s] * scale, 0.0), highest) if anions else 0.0
    return states


def _x(el: Element) -> float:
    """Pauling electronegativity, with noble gases and unknowns ranked last."""
    x = el.X
    return float(x) if x == x else 0.0
