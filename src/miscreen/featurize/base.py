"""The featurizer contract (matminer-like) and the entry every featurizer reads.

A featurizer has ``name``, ``version``, ``needs_structure``, ``feature_labels()``,
``featurize(entry) -> list[float]`` and ``citations()``. An :class:`Entry` holds one record
and builds the expensive intermediates (structure context, oxidation states) lazily, once,
so that every featurizer run on the entry shares them.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np
from pymatgen.core import Composition, Element, Structure

from miscreen.featurize.context import StructureContext, build_context
from miscreen.featurize.oxidation import Oxidation, guess
from miscreen.fetch.parsing import structure_from_json

_sum, _min, _max = np.add.reduce, np.minimum.reduce, np.maximum.reduce


@dataclass
class Entry:
    """One record: composition, optional structure JSON and the table's cell fields."""

    composition: Composition
    structure_json: str | None = None
    spacegroup: float = math.nan
    lattice: tuple[float, ...] = (math.nan,) * 6
    z: float = math.nan
    _built: list[str] = field(default_factory=list)

    @cached_property
    def structure(self) -> Structure | None:
        if not self.structure_json:
            return None
        self._built.append("structure")
        return structure_from_json(self.structure_json)

    @cached_property
    def context(self) -> StructureContext | None:
        if self.structure is None:
            return None
        self._built.append("context")
        return build_context(self.structure)

    @cached_property
    def oxidation(self) -> Oxidation:
        """From the structure's context when there is one, else from the composition."""
        if self.context is not None:
            return self.context.oxidation
        return guess(self.composition)


class Featurizer(ABC):
    """A group of features computed from an :class:`Entry`."""

    name: str = ""
    version: str = "1"
    needs_structure: bool = False

    @abstractmethod
    def feature_labels(self) -> list[str]:
        """Column names, in order, each prefixed by the group name."""

    @abstractmethod
    def featurize(self, entry: Entry) -> list[float]:
        """Feature values for one entry, in ``feature_labels`` order."""

    def citations(self) -> list[str]:
        return []

    def implementors(self) -> list[str]:
        return ["miscreen"]


@lru_cache(maxsize=256)
def electronegativity(symbol: str) -> float:
    """Pauling electronegativity of an element; 0 where pymatgen has none (noble gases)."""
    x = Element(symbol).X
    return float(x) if x == x else 0.0


def wstats(values: np.ndarray, weights: np.ndarray) -> tuple[float, float, float, float]:
    """Weighted (mean, std, min, max) over entries with positive weight; NaN when none."""
    ok = (weights > 0) & np.isfinite(values)
    v, w = values[ok], weights[ok]
    if not v.size:
        return (math.nan,) * 4
    # np.average's own arithmetic (multiply, sum, divide), the same floats without its
    # argument checks and numpy's scalar wrappers, which cost more than the sums on these
    # short vectors (tests/featurize/test_fast_paths.py checks the floats)
    total = float(_sum(w))
    mean = float(_sum(v * w)) / total
    dev = v - mean
    std = math.sqrt(float(_sum(dev * dev * w)) / total)
    return mean, std, float(_min(v)), float(_max(v))
