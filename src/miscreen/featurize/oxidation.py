"""Oxidation states per element, guessed once per structure with a budget and a fallback.

Method order (the one used is recorded):

1. ``given``: every species already carries an oxidation state (e.g. from the CIF).
2. ``pymatgen``: ``Composition.oxi_state_guesses`` on the reduced integer formula, only within
   the budget (at most ``MAX_GUESS_ATOMS`` atoms and ``MAX_GUESS_ELEMENTS`` elements, integer
   amounts): the guesser is combinatorial and takes minutes on large disordered formulas.
3. ``electronegativity``: the most electronegative element and every halogen, chalcogen and
   N present are anions with their most negative common state; Li is +1 and the other
   cations share the remaining positive charge in proportion to their highest common state,
   each capped at the highest state it is known in. A composition with more anion charge
   than its cations can carry (an O/F site written as two full sites in a CIF, for example)
   is left unbalanced rather than given Nb+23.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache

from pymatgen.core import Composition, Element

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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            guesses = comp.oxi_state_guesses(max_sites=-MAX_GUESS_ATOMS)
        except ValueError:
            return None
    if not guesses or not any(q < 0 for q in guesses[0].values()):
        return None
    return {el: float(q) for el, q in guesses[0].items()}


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
