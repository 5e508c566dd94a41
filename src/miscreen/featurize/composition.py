"""Composition descriptors (matminer): Magpie element statistics, stoichiometry,
valence-orbital fractions and element fractions. Partial occupancies need no special
treatment here: a disordered composition is just fractional amounts.

The Magpie statistics are matminer's ``ElementProperty.from_preset("magpie")`` values,
computed for all 22 properties at once (:func:`magpie`) from matminer's own element table:
the same numpy operations per property as matminer's ``PropertyStats``, so the same floats,
at a tenth of the cost (matminer's loop over properties and statistics was a third of the
``full`` preset's time). The valence-orbital fractions are matminer's ``ValenceOrbital``
values, computed the same way (:func:`valence_orbitals`).
"""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
from pymatgen.core import Composition

from miscreen.featurize.base import Entry, Featurizer

VERSION = "1"
MAGPIE_STATS = ("minimum", "maximum", "range", "mean", "avg_dev", "mode")


@cache
def _featurizers() -> tuple:
    from matminer.featurizers.composition import (
        ElementFraction,
        ElementProperty,
        Stoichiometry,
        ValenceOrbital,
    )

    return (
        ElementProperty.from_preset("magpie", impute_nan=True),
        Stoichiometry(),
        ValenceOrbital(impute_nan=True),
        ElementFraction(),
    )


def labels() -> list[str]:
    out: list[str] = []
    for f in _featurizers():
        out += [f"comp:{label}" for label in f.feature_labels()]
    return out


@cache
def _element_properties(symbol: str) -> np.ndarray:
    """The Magpie properties of one element, in the featurizer's order (matminer's table)."""
    from pymatgen.core import Element

    prop = _featurizers()[0]
    el = Element(symbol)
    return np.array(
        [prop.data_source.get_elemental_property(el, a) for a in prop.features], dtype=float
    )


def magpie(composition: Composition) -> np.ndarray:
    """matminer's Magpie ``ElementProperty`` vector (per property: minimum, maximum, range,
    amount-weighted mean, mean absolute deviation and the value of the most abundant
    element, the smallest on a tie), every property in one array operation."""
    elements, amounts = zip(*composition.element_composition.items(), strict=True)
    data = np.stack([_element_properties(el.symbol) for el in elements], axis=1)
    weights = np.array(amounts, dtype=float)
    nan = np.isnan(data).any(axis=1)
    lo = np.where(nan, np.nan, data.min(axis=1))
    hi = np.where(nan, np.nan, data.max(axis=1))
    total = weights.sum()
    # np.average(x, weights=w) is (x * w).sum() / w.sum(); row by row here
    mean = np.multiply(data, weights).sum(axis=1) / total
    dev = np.multiply(np.abs(data - mean[:, None]), weights).sum(axis=1) / total
    mode = data[:, np.isclose(weights, weights.max())].min(axis=1)
    return np.stack([lo, hi, hi - lo, mean, dev, mode], axis=1).ravel()


@cache
def _valence_electrons(symbol: str) -> np.ndarray:
    """Valence electrons of one element per orbital, then in all (matminer's Magpie table)."""
    from pymatgen.core import Element

    orbital = _featurizers()[2]
    el = Element(symbol)
    names = [f"N{o}Valence" for o in orbital.orbitals] + ["NValence"]
    return np.array([orbital.data_source.get_elemental_property(el, n) for n in names], dtype=float)


def valence_orbitals(composition: Composition) -> list[float]:
    """matminer's ``ValenceOrbital`` vector: the amount-weighted mean number of valence
    electrons per orbital (``avg``) and each over the mean total (``frac``)."""
    orbital = _featurizers()[2]
    elements, amounts = zip(*composition.element_composition.items(), strict=True)
    data = np.stack([_valence_electrons(el.symbol) for el in elements], axis=1)
    weights = np.array(amounts, dtype=float)
    mean = np.multiply(data, weights).sum(axis=1) / weights.sum()  # np.average, row by row
    parts = {"avg": mean[:-1], "frac": mean[:-1] / mean[-1]}
    return [float(v) for prop in orbital.props for v in parts[prop]]


def featurize(composition: Composition) -> np.ndarray:
    prop, stoichiometry, orbital, fraction = _featurizers()
    fast = tuple(prop.stats) == MAGPIE_STATS and set(orbital.props) <= {"avg", "frac"}
    if not fast:  # another matminer's presets: its own loops
        values: list[float] = []
        others = [prop, stoichiometry, orbital, fraction]
    else:
        values = magpie(composition).tolist()
        others = [stoichiometry]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for f in others:
            values += list(f.featurize(composition))
    if fast:
        values += valence_orbitals(composition)
        values += list(fraction.featurize(composition))
    return np.asarray(values, dtype=float)


def citations() -> list[str]:
    out: list[str] = []
    for f in _featurizers():
        out += f.citations()
    return sorted(set(out))


class CompositionFeaturizer(Featurizer):
    """matminer's Magpie, stoichiometry, valence-orbital and element-fraction features."""

    name = "comp"
    version = VERSION
    needs_structure = False

    def feature_labels(self) -> list[str]:
        return labels()

    def featurize(self, entry: Entry) -> list[float]:
        return featurize(entry.composition).tolist()

    def citations(self) -> list[str]:
        return citations()
