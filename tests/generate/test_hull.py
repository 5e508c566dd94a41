"""The generated candidates' hull: with the snapshot's DFT formation energies standing in for
the potential, the hull code gives back the snapshot's own energies above the hull for a
chemical system whose phases are all in it (Cl-Mg of mp-2018: Mg, Cl2, MgCl2 on the hull and
a polymorph 0.2 eV/atom above it)."""

from __future__ import annotations

import pandas as pd
import pytest

from miscreen import schema as S
from miscreen.fetch.reference_rows import reference_rows
from miscreen.generate import hull
from miscreen.screen.energies import EnergyCalculator, fingerprint
from miscreen.screen.stability import FORMATION_ENERGY
from tests.conftest import SHARED

SYSTEM = frozenset({"Cl", "Mg"})


@pytest.fixture(scope="module")
def snapshot() -> pd.DataFrame:
    table = reference_rows(SHARED / "mp-2018" / "mp_2018_matminer.jsonl.gz", "mp-2018")
    numbers = pd.to_numeric(table[FORMATION_ENERGY], errors="coerce")
    return table[numbers.notna()].reset_index(drop=True)


def dft_calculator(refs) -> EnergyCalculator:
    """A 'potential' whose energy per atom is the snapshot's DFT formation energy."""
    by_fp = {
        fingerprint(refs.structure(i)): refs.value(i, FORMATION_ENERGY)
        for i in range(len(refs.ids))
        if refs.elements[i] <= SYSTEM and refs.structure(i) is not None
    }
    return EnergyCalculator(lambda structures: [by_fp[fingerprint(s)] for s in structures], "dft")


def test_the_hull_gives_back_the_snapshots_energies_above_the_hull(snapshot):
    refs = hull.reference_phases(snapshot, hull.DFT_HULL)
    rows = [i for i in range(len(refs.ids)) if refs.elements[i] and refs.elements[i] <= SYSTEM]
    assert {refs.formula[i] for i in rows} == {"Mg", "Cl2", "MgCl2"}
    calc = dft_calculator(refs)
    above = 0
    for i in [i for i in rows if len(refs.elements[i]) == 2]:  # each compound, left out
        structure, rid = refs.structure(i), refs.ids[i]
        energy = refs.value(i, FORMATION_ENERGY)
        value, method, phases, warning = hull.e_above_hull(
            f"new:{rid}", structure, energy, refs, calc, "dft_hull", exclude=[rid]
        )
        assert value == pytest.approx(refs.value(i, S.E_HULL), abs=2e-3), refs.formula[i]
        assert method == "dft_hull" and "no elemental" not in warning
        assert rid not in phases.split(",")  # the phase itself was left out of its hull
        above += refs.value(i, S.E_HULL) > 0.01
    assert above >= 1  # a phase above the hull is among them (MgCl2, 0.2 eV/atom)


def test_all_adds_one_cell_per_formula_of_rows_without_a_dft_energy():
    table = pd.DataFrame(
        {
            S.ID: ["a", "b", "c", "d"],
            S.COMPOSITION: ["Li2O", "Li3PO4", "Li3PO4", "P2O5"],
            S.E_HULL: [0.0, None, None, None],
            S.STRUCTURE: ['{"abc" "abc" "abc"}', '{' + '"abc"' * 16 + '}',
                          '{' + '"abc"' * 8 + '}', None],
        }
    )  # fmt: skip
    assert hull.reference_phases(table, hull.DFT_HULL).ids == ["a"]
    assert hull.reference_phases(table, hull.ALL).ids == ["a", "c"]
