"""Reference phases without a DFT energy on a generated candidate's hull (issue 24): a
disordered one (a measured CIF) is ordered before the potential evaluates it, one that
cannot be ordered is left out and named, one with the candidate's own formula is not a
phase to place the candidate against, and per formula an ordered cell is preferred."""

from __future__ import annotations

import pandas as pd
import pytest
from pymatgen.core import Composition, Lattice, Structure

from miscreen import schema as S
from miscreen.generate import hull
from miscreen.generate.relax import RelaxSettings, relaxing_potential
from miscreen.screen.energies import EnergyCalculator
from miscreen.store.structure_json import structure_to_json

ROCKSALT = Lattice.cubic(5.4)


def rocksalt(cations: list, a: float = 5.4) -> Structure:
    """A conventional rock-salt cell (4 cation, 4 Cl sites) with the given cation species."""
    cation = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    anion = [[0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5], [0.5, 0.5, 0.5]]
    return Structure(Lattice.cubic(a), [*cations, *["Cl"] * 4], [*cation, *anion])


def primitive(cation, a: float = 5.4) -> Structure:
    """A two-site rock-salt cell: ``cation`` (a species or a mixed site) and Cl."""
    return Structure(
        Lattice([[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]]),
        [cation, "Cl"],
        [[0, 0, 0], [0.5, 0.5, 0.5]],
    )


def table(rows: list[tuple[str, Structure, float | None]]) -> pd.DataFrame:
    """A reference table: id, structure, DFT energy above the hull (None: none known)."""
    return pd.DataFrame(
        {
            S.ID: [r[0] for r in rows],
            S.COMPOSITION: [r[1].composition.get_integer_formula_and_factor()[0] for r in rows],
            S.STRUCTURE: [structure_to_json(r[1]) for r in rows],
            S.E_HULL: [r[2] for r in rows],
        }
    )


class Recording:
    """A potential that records what it is asked to evaluate and passes it on."""

    def __init__(self, potential) -> None:
        self.potential = potential
        self.seen: list[Structure] = []

    def __call__(self, structures: list[Structure]) -> list[float]:
        self.seen += structures
        return self.potential(structures)


def by_formula(values: dict[str, float]):
    """A 'potential' whose energy per atom depends only on the reduced formula."""
    by_reduced = {Composition(f).reduced_formula: v for f, v in values.items()}
    return lambda structures: [by_reduced[s.composition.reduced_formula] for s in structures]


MIXED = primitive({"Li": 0.5, "Na": 0.5})  # (Li0.5Na0.5)Cl, as a measured CIF gives it
CANDIDATE = rocksalt(["Li", "Li", "Li", "Na"])  # Li3NaCl4, ordered


def test_a_disordered_reference_is_ordered_before_its_energy_is_computed():
    refs = hull.reference_phases(
        table([("licl", primitive("Li"), 0.0), ("nacl", primitive("Na"), 0.0),
               ("mixed", MIXED, None)]),
        hull.ALL,
    )  # fmt: skip
    settings = RelaxSettings(steps=3, fmax=1e-4)
    potential = Recording(relaxing_potential(settings))
    calc = EnergyCalculator(potential, setting=settings.key)
    energy = calc.energies({"me": CANDIDATE})["me"]
    value, method, phases, warning = hull.e_above_hull(
        "cand", CANDIDATE, energy, refs, calc, "chgnet_hull"
    )
    formula = Composition("LiNaCl2").reduced_formula
    evaluated = [s for s in potential.seen if s.composition.reduced_formula == formula]
    assert evaluated and all(s.is_ordered for s in evaluated)
    assert all(s.is_ordered for s in potential.seen)
    assert len(evaluated[0]) == 4  # the mixed site ordered in a doubled cell
    assert refs.structure(refs.ids.index("mixed")).is_ordered
    assert "mixed" not in refs.left_out and "left out" not in warning
    assert value == value and method == "chgnet_hull"  # a finite value: the hull spans it
    assert phases  # the hull's phases are named


def test_a_reference_that_cannot_be_ordered_is_left_out_with_a_reason():
    odd = primitive({"Li": 0.5, "Na": 0.5})
    odd.append("Li", [0.25, 0.25, 0.25])  # Li3NaCl2 per doubled cell: no charge balance
    too_big = rocksalt(["Li", "Li", "Na", "Na"]) * (2, 2, 1)  # 32 atoms > 20
    refs = hull.OrderedReferences(
        table([("licl", primitive("Li"), 0.0), ("nacl", primitive("Na"), 0.0),
               ("odd", odd, None), ("big", too_big, None)]),
        max_atoms=20,
    )  # fmt: skip
    calc = EnergyCalculator(by_formula({"LiCl": -1.0, "NaCl": -1.1, "Li3NaCl4": -1.0}), "f")
    value, _, phases, warning = hull.e_above_hull("cand", CANDIDATE, -1.0, refs, calc, "f")
    assert refs.structure(refs.ids.index("odd")) is None
    assert "cannot be ordered" in refs.left_out["odd"]
    assert "charge-balanced" in refs.left_out["odd"]
    assert refs.left_out["big"] == "32 atoms > 20"
    assert "left out: " in warning and "odd " in warning and "(cannot be ordered" in warning
    assert f"big {Composition('LiNaCl2').reduced_formula} (32 atoms > 20)" in warning
    assert set(phases.split(",")) == {"licl", "nacl"}
    assert value == pytest.approx(-1.0 - (0.75 * -1.0 + 0.25 * -1.1))  # 3 LiCl + NaCl


def test_a_candidate_is_not_placed_against_a_reference_that_is_itself():
    measured = rocksalt(["Na", "Li", "Li", "Li"], a=5.3)  # the candidate's compound, measured
    refs = hull.reference_phases(
        table([("licl", primitive("Li"), 0.0), ("nacl", primitive("Na"), 0.0),
               ("measured", measured, None)]),
        hull.ALL,
    )  # fmt: skip
    # the measured cell is lower than the candidate: against it, the candidate would sit
    # 0.05 eV/atom above the hull
    calc = EnergyCalculator(by_formula({"LiCl": -1.0, "NaCl": -1.0, "Li3NaCl4": -1.1}), "f")
    value, method, phases, warning = hull.e_above_hull("cand", CANDIDATE, -1.05, refs, calc, "f")
    assert value == 0.0 and method == "f"
    assert "own formula without a DFT energy left out (measured)" in warning
    assert "measured" not in phases.split(",")
    assert set(phases.split(",")) == {"licl", "nacl"}
    # a reference of the same formula with a DFT energy is a polymorph the DFT hull ranks:
    # it stays
    ranked = hull.reference_phases(
        table([("licl", primitive("Li"), 0.0), ("nacl", primitive("Na"), 0.0),
               ("polymorph", measured, 0.0)]),
        hull.ALL,
    )  # fmt: skip
    value, _, phases, warning = hull.e_above_hull("cand", CANDIDATE, -1.05, ranked, calc, "f")
    assert value == pytest.approx(0.05) and "polymorph" in phases.split(",")
    assert "own formula" not in warning


def test_all_prefers_an_ordered_cell_of_a_formula_then_the_fewest_atoms():
    refs = hull.reference_phases(
        table([("small-disordered", MIXED, None),
               ("large-ordered", rocksalt(["Li", "Na", "Li", "Na"]), None),
               ("larger-ordered", rocksalt(["Li", "Na", "Li", "Na"]) * (2, 1, 1), None)]),
        hull.ALL,
    )  # fmt: skip
    assert refs.ids == ["large-ordered"]
    assert refs.structure(0).is_ordered and len(refs.structure(0)) == 8


def test_a_reference_too_large_once_ordered_is_left_out_before_it_is_ordered(monkeypatch):
    thirds = primitive({"Li": 1 / 3, "Na": 2 / 3})  # whole atoms in a tripled cell: 6 atoms
    assert hull.ordered_size(thirds) == pytest.approx(6)
    assert hull.ordered_size(MIXED) == pytest.approx(4)

    def never(*args, **kwargs):
        raise AssertionError("ordered although too large")

    monkeypatch.setattr(hull, "order_structure", never)
    refs = hull.OrderedReferences(table([("thirds", thirds, None)]), max_atoms=5)
    assert refs.structure(0) is None
    assert refs.left_out["thirds"] == "6 atoms once ordered > 5"
