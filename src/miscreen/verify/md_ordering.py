"""Ordering of disordered cells for MD: the lowest-Ewald-energy ordering with pymatgen's
``OrderDisorderedStructureTransformation``, oxidation states guessed on the rounded
composition, the enumeration capped (a random sample of orderings above the cap)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from unittest import mock

import numpy as np
from pymatgen.core import Composition, Structure

from miscreen.verify.md_protocol import MDError

# Ordering of disordered cells (pymatgen's transformation: about 5 million permutations a
# minute; above the cap, a random sample of orderings ranked by Ewald energy instead).
MAX_ORDERINGS = 5_000_000
RANDOM_ORDERINGS = 200
OCCUPANCY_TOLERANCE = 0.25  # a site group's total occupancy rounds to an integer within this
MAX_ORDER_MULTIPLIER = 4  # supercells tried to make every group's occupancy integral


@dataclass(frozen=True)
class Ordered:
    """An ordered cell and how it was obtained."""

    structure: Structure
    method: str  # "ordered" | "ewald" | "ewald (best of N random)"
    oxidation_states: dict[str, float]
    orderings: float  # number of orderings of the disordered sites (0 when ordered)


def _site_groups(structure: Structure) -> list[list[int]]:
    """Disordered sites grouped by identical species and occupancies (as pymatgen's
    transformation groups them without symmetry)."""
    groups: list[list[int]] = []
    exemplars: list[Composition] = []
    for i, site in enumerate(structure):
        if site.is_ordered:
            continue
        for g, sp in enumerate(exemplars):
            if site.species.almost_equals(sp):
                groups[g].append(i)
                break
        else:
            groups.append([i])
            exemplars.append(site.species)
    return groups


def _rounded_counts(structure: Structure, tol: float) -> tuple[Composition, float] | None:
    """(the composition after rounding each group's occupancy, log10 of the number of
    orderings), or None when some group's total is not within ``tol`` of an integer."""
    counts: dict[str, float] = {}
    log10_orderings = 0.0
    for site in structure:
        if site.is_ordered:
            el = next(iter(site.species)).symbol
            counts[el] = counts.get(el, 0) + 1
    for group in _site_groups(structure):
        total = sum((structure[i].species for i in group), Composition())
        filled = 0
        for sp, amount in total.items():
            if abs(amount - round(amount)) > tol:
                return None
            k = round(amount)
            counts[sp.symbol] = counts.get(sp.symbol, 0) + k
            # multinomial: choose k of the remaining sites for this species
            log10_orderings += _log10_binomial(len(group) - filled, k)
            filled += k
    return Composition(counts), log10_orderings


def _log10_binomial(n: int, k: int) -> float:
    if k < 0 or k > n:
        return 0.0
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)) / math.log(10)


def guess_oxidation_states(composition: Composition) -> dict[str, float]:
    """One charge-balanced oxidation state per element (pymatgen's most likely guess)."""
    guesses = composition.oxi_state_guesses(max_sites=-1)
    if not guesses:
        raise MDError(
            f"no charge-balanced oxidation states for {composition.reduced_formula}; "
            "cannot rank orderings by Ewald energy"
        )
    return {el: float(v) for el, v in guesses[0].items()}


@contextmanager
def seeded_random_orderings(seed: int) -> Iterator[None]:
    """pymatgen's random orderings drawn from ``seed``: its transformation calls
    ``get_randomly_manipulated_structures`` without a seed (a fresh ``default_rng()``, so
    every run ordered a cell differently); this passes one for the duration."""
    import pymatgen.transformations.standard_transformations as st

    sample = st.get_randomly_manipulated_structures
    with mock.patch.object(st, "get_randomly_manipulated_structures", partial(sample, seed=seed)):
        yield


def order_structure(
    structure: Structure,
    max_orderings: float = MAX_ORDERINGS,
    random_orderings: int = RANDOM_ORDERINGS,
    seed: int = 0,
) -> Ordered:
    """The lowest-Ewald-energy ordering of a disordered cell (the cell itself when ordered).

    Group occupancies are rounded as pymatgen's transformation rounds them (the smallest
    supercell, up to ``MAX_ORDER_MULTIPLIER`` along the shortest axis, in which they round
    within ``OCCUPANCY_TOLERANCE``); oxidation states are guessed on that composition. Above
    ``max_orderings`` orderings the enumeration is replaced by ``random_orderings`` random
    ones, ranked by Ewald energy.
    """
    from pymatgen.analysis.ewald import EwaldSummation
    from pymatgen.transformations.standard_transformations import (
        OrderDisorderedStructureTransformation as Order,
    )

    structure = structure.copy()
    structure.remove_oxidation_states()
    if structure.is_ordered:
        return Ordered(structure, "ordered", {}, 0.0)
    axis = int(np.argmin(structure.lattice.abc))
    for m in range(1, MAX_ORDER_MULTIPLIER + 1):
        scale = [1, 1, 1]
        scale[axis] = m
        cell = structure * scale if m > 1 else structure
        rounded = _rounded_counts(cell, OCCUPANCY_TOLERANCE)
        if rounded is not None:
            break
    else:
        raise MDError(
            f"site occupancies of {structure.composition.reduced_formula} do not add up to "
            f"whole atoms in cells up to {MAX_ORDER_MULTIPLIER}x the given one"
        )
    composition, log10_n = rounded
    oxi = guess_oxidation_states(composition)
    decorated = cell.copy()
    decorated.add_oxidation_state_by_element(oxi)
    if log10_n <= math.log10(max_orderings):
        best = Order(algo=Order.ALGO_FAST).apply_transformation(decorated)
        method = "ewald"
    else:
        with seeded_random_orderings(seed):
            sampled = Order(algo=Order.ALGO_RANDOM).apply_transformation(
                decorated, return_ranked_list=random_orderings
            )
        energies = [EwaldSummation(s["structure"]).total_energy for s in sampled]
        best = sampled[int(np.argmin(energies))]["structure"]
        method = f"ewald (best of {len(sampled)} random)"
    best = best.get_sorted_structure()
    best.remove_oxidation_states()
    return Ordered(best, method, oxi, 10.0**log10_n)
