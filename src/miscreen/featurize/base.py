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
    if not ok.any():
        return (math.nan,) * 4
    v, w = values[ok], weights[ok]
    # np.average's own arithmetic (multiply, sum, divide), the same floats without its
    # argument checks, which cost more than the sum on these short vectors
    total = w.sum()
    mean = float(np.multiply(v, w).sum() / total)
    std = float(np.sqrt(np.multiply((v - mean) ** 2, w).sum() / total))
    return mean, std, float(v.min()), float(v.max())


def group_min(keys: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Minimum of ``values`` per key in ``range(n)`` (inf where a key has none)."""
    out = np.full(n, np.inf)
    np.minimum.at(out, keys, values)
    return out


def group_max(keys: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Maximum of ``values`` per key in ``range(n)`` (-inf where a key has none)."""
    out = np.full(n, -np.inf)
    np.maximum.at(out, keys, values)
    return out


def group_sum(keys: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(keys, weights=values, minlength=n)


def effective_cn(
    center: np.ndarray, dist: np.ndarray, weight: np.ndarray, n: int, iterations: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Hoppe's effective coordination number and mean bond length per site, vectorised.

    ``weight`` is the neighbour's occupancy by the counted species, so a half-occupied
    neighbour counts half. Sites without weighted neighbours get NaN.
    """
    ok = weight > 0
    c, d, w = center[ok], dist[ok], weight[ok]
    lav = group_min(c, d, n)
    for _ in range(iterations):
        e = w * np.exp(1.0 - (d / lav[c]) ** 6)
        num, den = group_sum(c, e * d, n), group_sum(c, e, n)
        lav = np.divide(num, den, out=np.full(n, np.inf), where=den > 0)
    e = w * np.exp(1.0 - (d / lav[c]) ** 6)
    econ = group_sum(c, e, n)
    has = np.isfinite(lav)
    return np.where(has, econ, np.nan), np.where(has, lav, np.nan)
