"""Stability estimates: the source value wins, the matching route finds a known entry, the
hull code reproduces the snapshot's e_above_hull where its phases are all present, the
energy cache computes a structure once, and CHGNet gives an energy for a tiny cell."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Composition, Lattice, Structure

from miscreen import schema as S
from miscreen.screen.energies import EnergyCalculator, chgnet_potential
from miscreen.screen.stability import (
    CHGNET_HULL,
    FORMATION_ENERGY,
    SOURCE,
    References,
    dft_e_above_hull,
    fitted_elemental_energies,
    hull_warning,
    stability_table,
)

# The K-Nb-O system of the mp-2018 snapshot (../shared/data/mp-2018): every phase with a
# formation energy (eV/atom) and the snapshot's e_above_hull (eV/atom); K2O and Nb carry no
# energy there (the elements enter at 0 eV/atom). The snapshot's Nb-O binary lacks the
# Nb2O5 ground state MP had (both Nb2O5 sit above 0), so Nb-O rows are hull phases but not
# compared; the ternaries, K2O2 and O2 have every phase MP's hull had.
K_NB_O = [
    ("mp-604", "Nb2O5", -3.033381, 0.018842),
    ("mp-1595", "Nb2O5", -3.042436, 0.009787),
    ("mp-2672", "K2O2", -1.301204, 0.000000),
    ("mp-2692", "NbO", -1.500806, 0.792256),
    ("mp-4342", "KNbO3", -2.870260, 0.002065),
    ("mp-5246", "KNbO3", -2.872241, 0.000084),
    ("mp-7375", "KNbO3", -2.872325, 0.000000),
    ("mp-14175", "K3NbO8", -1.850363, 0.000000),
    ("mp-611836", "O2", 0.013366, 0.013366),
]


def _li2o(a: float = 4.61) -> Structure:
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(a), ["Li", "O"], [[0.25, 0.25, 0.25], [0, 0, 0]]
    )


def _li_bcc() -> Structure:
    return Structure(Lattice.cubic(3.44), ["Li", "Li"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def _o2_box() -> Structure:
    return Structure(Lattice.cubic(6.0), ["O", "O"], [[0, 0, 0], [0.2, 0, 0]])


def _records(rows: list[tuple[str, Structure | None, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            S.ID: [r[0] for r in rows],
            S.COMPOSITION: [r[1].composition.formula if r[1] else "Li2O" for r in rows],
            S.STRUCTURE: [json.dumps(r[1].as_dict()) if r[1] else None for r in rows],
            S.E_HULL: [r[2] for r in rows],
        }
    )


def _peroxide() -> Structure:
    """A made-up Li2O2 cell (4 atoms)."""
    coords = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    return Structure(Lattice.cubic(5.0), ["Li", "Li", "O", "O"], coords)


class CountingPotential:
    """A stand-in potential: energy per atom from the composition, counting structures."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, structures: list[Structure]) -> list[float]:
        self.calls += len(structures)
        per_el = {"Li": -1.9, "O": -4.9}
        out = []
        for s in structures:
            comp = s.composition.fractional_composition
            bonus = -0.7 if len(comp) > 1 else 0.0
            out.append(sum(x * per_el[el.symbol] for el, x in comp.items()) + bonus)
        return out


def test_hull_reproduces_the_snapshot_where_every_phase_is_present():
    refs = References(
        pd.DataFrame(
            {
                S.ID: [r[0] for r in K_NB_O],
                S.COMPOSITION: [r[1] for r in K_NB_O],
                FORMATION_ENERGY: [r[2] for r in K_NB_O],
                S.E_HULL: [r[3] for r in K_NB_O],
                S.STRUCTURE: None,
            }
        )
    )
    for rid, formula, ef, e_hull in K_NB_O:
        if formula in ("Nb2O5", "NbO"):
            continue
        got, phases = dft_e_above_hull(Composition(formula), ef, refs, exclude=[rid])
        assert got == pytest.approx(e_hull, abs=1e-5), formula
        assert rid not in phases.split(",")
    # and with the ground state KNbO3 held out, its polymorph sits on the hull
    got, phases = dft_e_above_hull(Composition("KNbO3"), -2.872241, refs, ["mp-5246", "mp-7375"])
    assert got == pytest.approx(0.0, abs=1e-9)
    assert "mp-4342" not in phases  # 2 meV above: not on the hull either way


def test_source_value_wins_over_match_and_potential():
    li2o = _li2o()
    refs = _records([("ref-li2o", li2o, 0.123)])
    potential = CountingPotential()
    calc = EnergyCalculator(potential)
    out = stability_table(_records([("cand", li2o, 0.5)]), refs, calc)
    assert out.at[0, S.E_HULL] == 0.5
    assert out.at[0, S.STABILITY_METHOD] == SOURCE
    assert potential.calls == 0


def test_matching_route_finds_the_known_entry():
    refs = _records([("ref-li2o", _li2o(), 0.123), ("other", _li_bcc(), 0.0)])
    bigger = _li2o(4.65)
    bigger.make_supercell([2, 1, 1])
    out = stability_table(_records([("cand", bigger, np.nan)]), refs, None)
    assert out.at[0, S.STABILITY_METHOD] == "matched:ref-li2o"
    assert out.at[0, S.E_HULL] == 0.123
    assert out.at[0, S.HULL_PHASES] == "ref-li2o"


def test_potential_hull_records_its_phases_and_what_it_lacks(tmp_path):
    refs = _records([("li", _li_bcc(), np.nan), ("o2", _o2_box(), np.nan)])
    potential = CountingPotential()
    calc = EnergyCalculator(potential, cache_dir=tmp_path)
    cand = _li2o()
    cand.perturb(0.05, min_distance=0.01)  # not a snapshot entry: no match
    out = stability_table(_records([("cand", cand, np.nan)]), refs, calc)
    assert out.at[0, S.STABILITY_METHOD] == CHGNET_HULL
    assert out.at[0, S.E_HULL] == pytest.approx(0.0)  # below the Li + O2 line
    assert set(out.at[0, S.HULL_PHASES].split(",")) == {"li", "o2"}
    assert out.at[0, S.HULL_WARNING] == "no binary phase"
    # the disk cache: a second calculator computes nothing again
    again = EnergyCalculator(potential, cache_dir=tmp_path)
    calls = potential.calls
    stability_table(_records([("cand", cand, np.nan)]), refs, again)
    assert potential.calls == calls and again.computed == 0


def test_a_missing_elemental_phase_leaves_no_hull_and_says_so():
    refs = _records([("li", _li_bcc(), np.nan)])
    out = stability_table(
        _records([("cand", _li2o(), np.nan)]), refs, EnergyCalculator(CountingPotential())
    )
    assert np.isnan(out.at[0, S.E_HULL])
    assert out.at[0, S.STABILITY_METHOD].startswith("none")
    assert "no elemental O" in out.at[0, S.HULL_WARNING]


def test_a_missing_elemental_phase_is_fitted_to_dft_formation_energies():
    li2o_ref = _li2o()
    refs = _records([("li", _li_bcc(), np.nan), ("ref-li2o", li2o_ref, np.nan)])
    refs[FORMATION_ENERGY] = [np.nan, -2.0]
    calc = EnergyCalculator(CountingPotential())
    energies = calc.energies({"li": _li_bcc(), "ref-li2o": li2o_ref})
    # Li2O: -3.6 eV/atom from the stand-in; -3.6 = -2.0 + 2/3 (-1.9) + 1/3 mu_O: mu_O = -1.0
    fitted = fitted_elemental_energies({"O"}, [0, 1], References(refs), energies)
    assert fitted["O"][0] == pytest.approx(-1.0) and fitted["O"][1] == 1
    cand = Structure(Lattice.cubic(4.0), ["Li", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    out = stability_table(_records([("cand", cand, np.nan)]), refs, calc)
    assert out.at[0, S.STABILITY_METHOD] == CHGNET_HULL
    assert "fitted:O" in out.at[0, S.HULL_PHASES].split(",")
    assert "no elemental O (fitted to 1 DFT formation energies)" in out.at[0, S.HULL_WARNING]


def test_hull_warning_names_missing_systems():
    els = frozenset({"Li", "P", "S"})
    phases = [frozenset({"Li"}), frozenset({"P"}), frozenset({"S"}), frozenset({"Li", "S"})]
    assert hull_warning(els, phases) == "no ternary phase"
    assert hull_warning(els, phases[1:3]) == "no elemental Li; no binary phase; no ternary phase"


def test_chgnet_energy_of_a_tiny_cell():
    (energy,) = chgnet_potential()([_li_bcc()])
    assert -2.5 < energy < -1.5  # Li metal: about -1.9 eV/atom in MP (PBE)


def test_a_system_lacking_both_elemental_phases_is_fitted_from_its_compounds():
    """No elemental Li and no elemental O, but two Li-O compounds with DFT formation
    energies: the two chemical potentials are solved together (least squares)."""
    li2o, li2o2 = _li2o(), _peroxide()
    refs = _records([("li2o", li2o, np.nan), ("li2o2", li2o2, np.nan)])
    refs[FORMATION_ENERGY] = [-2.0, -1.6]
    energies = {"li2o": -3.6, "li2o2": -3.0}
    fitted = fitted_elemental_energies({"Li", "O"}, [0, 1], References(refs), energies)
    # -3.6 = -2.0 + 2/3 mu_Li + 1/3 mu_O and -3.0 = -1.6 + 1/2 mu_Li + 1/2 mu_O
    mu_li, mu_o = np.linalg.solve([[2 / 3, 1 / 3], [0.5, 0.5]], [-1.6, -1.4])
    assert fitted["Li"] == (pytest.approx(mu_li), 2) and fitted["O"] == (pytest.approx(mu_o), 2)
    # one compound cannot fix two potentials: nothing is fitted
    assert fitted_elemental_energies({"Li", "O"}, [0], References(refs), energies) == {}


def test_phases_far_above_the_dft_hull_stay_out_of_the_hull():
    refs = _records(
        [("li", _li_bcc(), 0.0), ("far", _li_bcc(), 0.5), ("unknown", _li_bcc(), np.nan)]
    )
    table = References(refs)
    assert [table.on_hull(i) for i in range(3)] == [True, False, True]


def test_a_polymorph_needs_no_elemental_phase_but_a_new_composition_does():
    """Without any elemental phase and no formation energies to fit them, the hull is that
    of the known compounds: a Li2O polymorph sits 0.1 eV/atom above the known Li2O; Li2O2,
    outside what Li2O spans, gets no value and says why."""
    known = _li2o()
    polymorph = known.copy()
    polymorph.scale_lattice(known.volume * 1.2)
    refs = _records([("li2o", known, np.nan)])

    def potential(structures: list[Structure]) -> list[float]:
        return [-3.0 if s.volume <= known.volume * 1.01 else -2.9 for s in structures]

    calc = EnergyCalculator(potential)
    peroxide = _peroxide()
    out = stability_table(_records([("poly", polymorph, np.nan), ("per", peroxide, np.nan)]),
                          refs, calc)  # fmt: skip
    assert out.at[0, S.STABILITY_METHOD] == CHGNET_HULL
    assert out.at[0, S.E_HULL] == pytest.approx(0.1)
    assert out.at[0, S.HULL_PHASES] == "li2o"
    assert np.isnan(out.at[1, S.E_HULL])
    assert "outside what the known compounds span" in out.at[1, S.HULL_WARNING]


def test_an_element_its_system_cannot_fix_is_fitted_to_compounds_elsewhere():
    """No elemental Li and no Li-O compound with an energy, but Li3N (DFT formation energy
    known) and elemental N elsewhere in the references: Li's energy is fitted to Li3N, and
    the Li2O candidate gets a hull that says so."""

    def cell(species: list[str], a: float = 4.0) -> Structure:
        coords = [[i / len(species), i / len(species), 0] for i in range(len(species))]
        return Structure(Lattice.cubic(a), species, coords)

    refs = _records(
        [("n2", cell(["N", "N"]), 0.0), ("o2", cell(["O", "O"]), 0.0),
         ("li3n", cell(["Li", "Li", "Li", "N"]), 0.0)]
    )  # fmt: skip
    refs[FORMATION_ENERGY] = [0.0, 0.0, -0.4]

    def potential(structures: list[Structure]) -> list[float]:
        table = {"N2": -8.0, "O2": -4.9, "Li3N": -4.0, "Li2O": -4.8}
        return [table[s.composition.reduced_formula] for s in structures]

    out = stability_table(_records([("cand", _li2o(), np.nan)]), refs, EnergyCalculator(potential))
    # mu_Li from Li3N: -4.0 = -0.4 + 3/4 mu_Li + 1/4 (-8.0): mu_Li = -2.133...
    assert out.at[0, S.STABILITY_METHOD] == CHGNET_HULL
    assert "fitted:Li" in out.at[0, S.HULL_PHASES].split(",")
    assert (
        "no elemental Li (fitted to the DFT formation energies of li3n)"
        in (out.at[0, S.HULL_WARNING])
    )
    assert out.at[0, S.E_HULL] == 0.0  # Li2O at -4.8 lies below Li + O at these energies


def test_a_fitted_element_note_does_not_touch_a_longer_symbol():
    """Fitting S must not rewrite the note of Se (a symbol it prefixes)."""
    from miscreen.screen.stability import with_note

    warning = hull_warning(frozenset({"Li", "S", "Se"}), [frozenset({"Li"})])
    fixed = with_note(warning, "S", "no elemental S (fitted)")
    assert "no elemental Se" in fixed and fixed.count("(fitted)") == 1
    assert fixed.startswith("no elemental S (fitted); no elemental Se")
