"""The substituted parent: the parent as given (partial occupancies kept) with a
candidate's substitution on every site and the candidate's volume per atom."""

from __future__ import annotations

from pathlib import Path

import pymatgen.util
import pytest
from pymatgen.core import Composition, Lattice, Structure

from miscreen.generate import substitute

EXAMPLES = Path(pymatgen.util.__file__).parent / "structures"


def test_species_map_reads_the_label_back() -> None:
    assert substitute.species_map("") == ({}, 0)
    assert substitute.species_map("Ge->Si,S->Se") == ({"Ge": "Si", "S": "Se"}, 0)
    assert substitute.species_map("Ge->P,Li-1") == ({"Ge": "P"}, -1)
    assert substitute.species_map("Ge->Al,S->Se,Li+2") == ({"Ge": "Al", "S": "Se"}, 2)
    assert substitute.species_map(substitute.lithium_label(3)) == ({}, 3)


def test_lgps_partial_sites_get_the_new_species_and_the_candidates_volume() -> None:
    parent = Structure.from_file(EXAMPLES / "Li10GeP2S12.json")
    assert not parent.is_ordered
    candidate = substitute.explicit(
        substitute.ordered_parent(parent), "p", {"Ge": ["Sn"], "S": ["Se"]}
    )
    sn = next(c for c in candidate.candidates if c.substitution == "Ge->Sn,S->Se")
    relaxed = sn.structure.copy()
    relaxed.scale_lattice(relaxed.volume * 1.07)  # a relaxation that grew the cell
    out = substitute.substituted_parent(parent, relaxed, sn.substitution)
    assert not out.is_ordered  # the partial sites stay partial
    assert len(out) == len(parent)
    elements = {el.symbol for el in out.composition.elements}
    assert elements == {"Li", "Sn", "P", "Se"}
    mixed = [s for s in out if len(s.species) > 1 and "Sn" in s.species.as_dict()]
    assert mixed, "the parent's mixed Ge/P site carries Sn/P"
    assert (
        out.composition.reduced_composition
        == parent.composition.replace({"Ge": "Sn", "S": "Se"}).reduced_composition
    )
    per_atom = out.volume / out.composition.num_atoms
    assert per_atom == pytest.approx(relaxed.volume / len(relaxed))
    assert out.lattice.angles == pytest.approx(parent.lattice.angles)  # isotropic
    ratios = [a / b for a, b in zip(out.lattice.abc, parent.lattice.abc, strict=True)]
    assert ratios == pytest.approx([ratios[0]] * 3)


def test_an_ordered_parent_differs_from_the_candidate_only_by_relaxation() -> None:
    parent = Structure(Lattice.cubic(4.2), ["Li", "Li", "O"],
                       [[0, 0, 0], [0.5, 0.5, 0], [0.25, 0.25, 0.5]])  # fmt: skip
    relaxed = parent.copy()
    relaxed.replace_species({"O": "S"})
    relaxed.scale_lattice(parent.volume * 1.3)
    out = substitute.substituted_parent(parent, relaxed, "O->S")
    assert out.composition == Composition("Li2S")
    assert out.volume == pytest.approx(relaxed.volume)
    assert out.frac_coords == pytest.approx(parent.frac_coords)


def test_li_removed_by_an_aliovalent_substitution_empties_li_sites_in_proportion() -> None:
    parent = Structure(Lattice.cubic(6.0), ["Li", "Li", "Li", "Li", "Ge", "S", "S", "S", "S"],
                       [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5],
                        [0.25, 0.25, 0.25], [0.5, 0.5, 0.5], [0, 0, 0.5], [0, 0.5, 0],
                        [0.5, 0, 0]])  # fmt: skip
    candidate = Structure(parent.lattice, ["Li"] * 3 + ["P"] + ["S"] * 4,
                          parent.frac_coords[1:])  # fmt: skip
    out = substitute.substituted_parent(parent, candidate, "Ge->P,Li-1")
    assert out.composition == Composition("Li3PS4")
    assert [s.species["Li"] for s in out if "Li" in s.species.as_dict()] == pytest.approx(
        [0.75] * 4
    )


def test_li_added_by_an_aliovalent_substitution_fills_the_partial_li_sites() -> None:
    lattice = Lattice.cubic(6.0)
    parent = Structure(lattice, [{"Li": 1.0}, {"Li": 0.5}, {"Li": 0.5}, {"Li": 0.5}, {"Li": 0.5},
                                 "Ge", "S", "S", "S", "S"],
                       [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5], [0.75, 0.75, 0.75],
                        [0.25, 0.25, 0.25], [0.5, 0.5, 0.5], [0, 0, 0.5], [0, 0.5, 0],
                        [0.5, 0, 0]])  # fmt: skip
    assert parent.composition == Composition("Li3GeS4")
    candidate = Structure(lattice, ["Li"] * 4 + ["Al"] + ["S"] * 4,
                          parent.frac_coords[[0, 1, 2, 3, 5, 6, 7, 8, 9]])  # fmt: skip
    out = substitute.substituted_parent(parent, candidate, "Ge->Al,Li+1")
    assert out.composition == Composition("Li4AlS4")
    li = [s.species["Li"] for s in out if "Li" in s.species.as_dict()]
    assert li == pytest.approx([1.0, 0.75, 0.75, 0.75, 0.75])  # the full site stays full


def test_added_li_beyond_the_partial_sites_room_fills_them_and_stops() -> None:
    lattice = Lattice.cubic(6.0)
    parent = Structure(lattice, [{"Li": 1.0}, {"Li": 0.9}, "Ge", "S", "S"],
                       [[0, 0, 0], [0.5, 0.5, 0], [0.25, 0.25, 0.25], [0.5, 0.5, 0.5],
                        [0, 0, 0.5]])  # fmt: skip
    candidate = Structure(lattice, ["Li"] * 4 + ["Al", "S", "S"],
                          [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5],
                           [0.25, 0.25, 0.25], [0.5, 0.5, 0.5], [0, 0, 0.5]])  # fmt: skip
    out = substitute.li_scaled(parent, candidate)
    assert [s.species.num_atoms for s in out] == pytest.approx([1.0, 1.0, 1.0, 1.0, 1.0])
