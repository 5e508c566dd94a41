"""Composition descriptors (matminer): Magpie element statistics, stoichiometry,
valence-orbital fractions and element fractions. Partial occupancies need no special
treatment here: a disordered composition is just fractional amounts."""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
from pymatgen.core import Composition

from miscreen.featurize.base import Entry, Featurizer

VERSION = "1"


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


def featurize(composition: Composition) -> np.ndarray:
    values: list[float] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for f in _featurizers():
            values += list(f.featurize(composition))
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
