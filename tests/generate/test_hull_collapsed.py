"""A phase without a plausible energy (a collapsed relaxation: SevenNet-0 once gave
-8,400 eV/atom for a Li4GeSe4 cell) must not decide a hull: it is left out and named, a
candidate without one gets no value, and a NaN stored in the energy cache reads back as NaN."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from miscreen.generate import hull
from miscreen.potentials import MIN_DISTANCE_A, closest_distance
from miscreen.screen.energies import EnergyCache, EnergyCalculator
from tests.generate.test_hull_references import CANDIDATE, by_formula, primitive, rocksalt, table


def test_a_reference_without_a_plausible_energy_is_left_out_and_named():
    refs = hull.reference_phases(
        table([("licl", primitive("Li"), 0.0), ("nacl", primitive("Na"), 0.0),
               ("collapsed", rocksalt(["Li", "Li", "Na", "Na"]), 0.0)]),
        hull.ALL,
    )  # fmt: skip
    energies = {"LiCl": -1.0, "NaCl": -1.1, "LiNaCl2": -8400.0, "Li3NaCl4": -1.0}
    calc = EnergyCalculator(by_formula(energies), "f")
    value, _, phases, warning = hull.e_above_hull("cand", CANDIDATE, -1.0, refs, calc, "f")
    assert value == pytest.approx(-1.0 - (0.75 * -1.0 + 0.25 * -1.1))  # 3 LiCl + NaCl
    assert set(phases.split(",")) == {"licl", "nacl"}
    assert "no plausible energy: collapsed" in warning
    value, method, _, warning = hull.e_above_hull("cand", CANDIDATE, math.nan, refs, calc, "f")
    assert math.isnan(value) and method.startswith("none") and "no plausible energy" in warning


def test_the_closest_distance_finds_a_collapse_across_the_cell_boundary():
    cell = Structure(Lattice.cubic(4.0), ["Li", "Se"], [[0, 0, 0], [0.98, 0, 0]])
    assert closest_distance(cell) == pytest.approx(0.08) and closest_distance(cell) < MIN_DISTANCE_A
    assert closest_distance(primitive("Li")) == pytest.approx(2.7)


def test_a_nan_energy_in_the_cache_reads_back_as_nan(tmp_path):
    cache = EnergyCache(tmp_path)
    cache.put_many([("a", "s", math.nan, 1.0), ("b", "s", -3.5, 1.0)])
    got = cache.get_many(["a", "b"], "s")
    assert np.isnan(got["a"]) and got["b"] == -3.5
