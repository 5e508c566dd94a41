"""The hull-potential study's phases, hulls and statistics (issue 24), on toy tables and on
the Cl-Mg system of mp-2018 with the snapshot's DFT formation energies standing in for a
potential (no real potential runs)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from benchmarks.research import hull_potentials as hp
from miscreen import schema as S
from miscreen.fetch.reference_rows import reference_rows
from miscreen.potentials import Relaxation
from miscreen.screen.energies import EnergyCalculator, fingerprint
from miscreen.screen.stability import FORMATION_ENERGY, References
from miscreen.store.structure_json import structure_to_json
from tests.conftest import SHARED

CL_MG = frozenset({"Cl", "Mg"})


def cell(species: list[str]) -> str:
    n = len(species)
    coords = [[i / n, i / n, i / n] for i in range(n)]
    return structure_to_json(Structure(Lattice.cubic(3.0 * n), species, coords))


def toy_table() -> pd.DataFrame:
    rows = [  # id, composition, species of the cell, e_above_hull
        ("fam", "Li10GeP2S12", ["Li", "Ge", "P", "S"], 0.0),  # the family: excluded
        ("li2s", "Li2S", ["Li", "Li", "S"], 0.0),
        ("p4s5", "P4S5", ["P", "S"], 0.004),
        ("geo2", "GeO2", ["Ge", "O", "O"], 0.3),  # above the e_above_hull cap
        ("big", "SiS2", ["Si", "S", "S"] * 3, 0.01),  # more atoms than the cap
        ("sis2", "SiS2", ["Si", "S", "S"], 0.0),
        ("sis2b", "SiS2", ["Si", "S", "S"], 0.05),
        ("sis2c", "SiS2", ["Si", "S", "S"], 0.08),  # third of its system: over the cap
        ("nacl", "NaCl", ["Na", "Cl"], 0.0),  # outside the systems
        ("nodft", "Li2Se", ["Li", "Li", "Se"], np.nan),  # no DFT energy
    ]
    return pd.DataFrame(
        {
            S.ID: [r[0] for r in rows],
            S.COMPOSITION: [r[1] for r in rows],
            S.STRUCTURE: [cell(r[2]) for r in rows],
            S.E_HULL: [r[3] for r in rows],
            FORMATION_ENERGY: [-0.5] * len(rows),
        }
    )


def test_phases_leave_out_the_family_and_keep_to_the_caps():
    phases, excluded = hp.select_phases(toy_table(), max_atoms=8, max_e_hull=0.2, per_system=2)
    assert excluded == ["fam"]
    assert sorted(phases[S.ID]) == ["li2s", "p4s5", "sis2", "sis2b"]
    assert hp.is_family(frozenset({"Li", "Sn", "P", "O"}))
    assert not hp.is_family(frozenset({"Li", "P", "O"}))
    assert hp.in_systems(frozenset({"Li", "P", "Se"})) and not hp.in_systems(frozenset({"Na"}))


def test_anion_classes():
    assert hp.anion_class(frozenset({"Si", "O"})) == "oxides"
    assert hp.anion_class(frozenset({"Li", "P", "S"})) == "sulfides"
    assert hp.anion_class(frozenset({"Ge", "Se"})) == "selenides"
    assert hp.anion_class(frozenset({"Li", "Sn"})) == "other"


@pytest.fixture(scope="module")
def cl_mg() -> References:
    table = reference_rows(SHARED / "mp-2018" / "mp_2018_matminer.jsonl.gz", "mp-2018")
    known = pd.to_numeric(table[S.E_HULL], errors="coerce").notna()
    inside = [hp.in_systems(e, [CL_MG]) for e in References(table).elements]
    return References(table[known & np.array(inside)])


def formation_calculator(refs: References, shift: dict[str, float]) -> EnergyCalculator:
    """A 'potential' whose energy per atom is the DFT formation energy, plus ``shift`` by id."""
    by_fp = {
        fingerprint(refs.structure(i)): refs.value(i, FORMATION_ENERGY) + shift.get(rid, 0.0)
        for i, rid in enumerate(refs.ids)
    }
    return EnergyCalculator(lambda structures: [by_fp[fingerprint(s)] for s in structures], "toy")


def test_dft_energies_give_back_the_dft_hull_and_a_shift_shows_as_its_error(cl_mg):
    frame = hp.phase_hulls(cl_mg, formation_calculator(cl_mg, {}))
    assert set(frame["formula"]) == {"MgCl2"} and len(frame) >= 2  # compounds only
    assert np.allclose(frame["pot"], frame["dft_same"], atol=1e-6)
    assert np.allclose(frame["dft_same"], frame["dft_given"], atol=2e-3)
    above = frame.loc[frame["dft_given"].idxmax(), "id"]
    assert frame["dft_given"].max() > 0.1  # a polymorph above the hull
    shifted = hp.phase_hulls(cl_mg, formation_calculator(cl_mg, {above: -0.05}))
    sc = hp.scores(shifted, truth="dft_same")
    assert sc["all"]["mse"] == pytest.approx(-0.05 / len(shifted), abs=1e-6)
    assert sc["all"]["mae"] == pytest.approx(0.05 / len(shifted), abs=1e-6)


def frame(pot: list[float], truth: list[float], systems: list[str] | None = None) -> pd.DataFrame:
    formulas = ["SiO2", "SiO2", "SiS2", "SnO", "SnS"]
    classes = ["oxides", "oxides", "sulfides", "oxides", "sulfides"]
    return pd.DataFrame(
        {
            "id": [f"p{i}" for i in range(5)],
            "formula": formulas,
            "class": classes,
            "system": systems or ["O-Si", "O-Si", "S-Si", "O-Sn", "S-Sn"],
            "dft_given": truth,
            "pot": pot,
        }
    )


def test_scores_per_class_and_the_oxide_minus_sulfide_error():
    f = frame([0.0, 0.08, 0.0, 0.01, 0.03], [0.0, 0.10, 0.0, 0.0, 0.05])
    sc = hp.scores(f)
    assert sc["oxides"]["n"] == 3 and sc["sulfides"]["n"] == 2 and sc["selenides"]["n"] == 0
    assert sc["oxides"]["mse"] == pytest.approx((-0.02 + 0.01) / 3)
    assert sc["sulfides"]["mae"] == pytest.approx(0.01)
    assert sc["oxide_minus_sulfide_mse"] == pytest.approx((-0.01 / 3) - (-0.01))
    pairs = {p["pair"]: p for p in hp.anion_pairs(f)}
    assert set(pairs) == {"SiO2/SiS2", "SnO/SnS"}  # lowest-DFT polymorph of each formula
    assert pairs["SnO/SnS"]["pot"] == pytest.approx(-0.02)
    assert pairs["SnO/SnS"]["error"] == pytest.approx(0.03)
    assert hp.slope(f, truth="dft_given") == pytest.approx((0.1 * 0.08 + 0.05 * 0.03) / 0.0125)


def test_bootstrap_and_recommendation():
    truth = [0.0, 0.1, 0.0, 0.02, 0.05]
    good = frame(truth, truth)
    bad = frame([0.0, 0.07, 0.0, 0.0, 0.02], truth)
    boot = hp.bootstrap({"chgnet": bad, "other": good}, n=300)
    assert boot["other"]["share_lowest"] > 0.9
    assert boot["other"]["minus_incumbent_95"][1] < 0
    assert hp.recommend(boot)[0] == "other"
    by_system = hp.bootstrap({"chgnet": bad, "other": good}, n=300, by="system")
    assert by_system["n_groups"] == 4 and by_system["n_phases"] == 5
    same = hp.bootstrap({"chgnet": bad, "other": bad}, n=300)
    assert hp.recommend(same)[0] == "chgnet"  # a tie keeps the incumbent


def test_relaxations_are_cached_and_resumed(tmp_path, monkeypatch):
    calls: list[str] = []

    def fake_relaxer(settings):
        def run(structure):
            calls.append(structure.composition.reduced_formula)
            return Relaxation(structure, -1.5, 0.01, 3, True, "converged", 0.1)

        return run

    monkeypatch.setattr("miscreen.generate.relax.relaxer", fake_relaxer)
    s = Structure(Lattice.cubic(4.0), ["Mg", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    calc, records = hp.cached_calculator("chgnet", tmp_path / "chgnet.json")
    assert calc.energies({"a": s}) == {"a": -1.5}
    assert records[fingerprint(s)]["steps"] == 3 and calls == ["MgCl"]
    again, _ = hp.cached_calculator("chgnet", tmp_path / "chgnet.json")
    assert again.energies({"a": s}) == {"a": -1.5} and calls == ["MgCl"]  # read, not rerun
