"""Interstitial Li for a substitution that lowers the cation charge: the lowest BVSE site
energies, at least the minimum distance from every atom and from each other, deterministic,
and a clear reason where no site is far enough."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Composition, Lattice, Structure

from miscreen.generate import interstitial, substitute
from miscreen.verify.bvse_grid import site_energy_grid

OXI = {"Li": 1.0, "Al": 3.0, "S": -2.0}


def li4ges4(a: float = 6.0) -> Structure:
    """A 9-atom Li4GeS4 cell: Ge4+ in a tetrahedron of S at 2.6 Å (a = 6 Å), Li 3 Å from S."""
    return Structure(Lattice.cubic(a), ["Li", "Li", "Li", "Li", "Ge", "S", "S", "S", "S"],
                     [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5],
                      [0.25, 0.25, 0.25], [0.5, 0.5, 0.5], [0, 0, 0.5], [0, 0.5, 0],
                      [0.5, 0, 0]])  # fmt: skip


def with_al(structure: Structure) -> Structure:
    out = structure.copy()
    out.replace_species({"Ge": "Al"})
    return out


def min_image_distances(lattice: Lattice, points: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """Nearest distance of each point to the sites, by pymatgen (the reference)."""
    return lattice.get_all_distances(points, frac).min(axis=1)


def test_the_first_site_is_the_lowest_energy_far_enough_from_every_atom() -> None:
    cell = with_al(li4ges4())
    cell.replace(0, "Li", [0.75, 0.75, 0.75])  # a kept Li on the landscape's minimum
    sites = interstitial.lithium_sites(cell, OXI, 1, resolution=0.3)
    decorated = cell.copy()
    decorated.add_oxidation_state_by_element(OXI)
    energy = site_energy_grid(decorated, resolution=0.3).reshape(-1)
    points = interstitial.grid_points((20, 20, 20))
    assert points[np.argmin(energy)] == pytest.approx([0.75, 0.75, 0.75])
    far = min_image_distances(cell.lattice, points, cell.frac_coords) >= 1.8
    lowest = energy[far].min() - energy.min()
    assert lowest > 0  # not the kept Li's own site: the landscape does not see Li
    assert sites[0].site_energy_ev == pytest.approx(lowest, abs=1e-4)
    chosen = np.array([sites[0].frac_coords])
    assert min_image_distances(cell.lattice, chosen, cell.frac_coords)[0] >= 1.8


def test_al_for_ge_adds_one_li_charge_balanced_far_from_every_atom() -> None:
    out = substitute.explicit(li4ges4(), "p", {"Ge": ["Al"]}, aliovalent=True)
    assert not out.skipped
    al = next(c for c in out.candidates if c.substitution)
    assert al.substitution == "Ge->Al,Li+1" and al.id == "gen:p:Ge->Al,Li+1"
    assert al.li_change == 1 and len(al.added_li) == 1
    assert al.structure.composition == Composition("Li5AlS4")
    assert substitute.charge(al.structure, al.oxidation_states) == 0
    added = al.structure[-1]
    assert added.specie.symbol == "Li"
    assert added.frac_coords == pytest.approx(al.added_li[0].frac_coords)
    others = al.structure.frac_coords[:-1]
    assert min_image_distances(al.structure.lattice, added.frac_coords[None], others)[0] >= 1.8


def test_each_added_li_keeps_the_distance_from_the_ones_before_it() -> None:
    cell = with_al(li4ges4(7.0))  # room for several
    sites = interstitial.lithium_sites(cell, OXI, 3)
    assert [s.site_energy_ev for s in sites] == sorted(s.site_energy_ev for s in sites)
    taken = np.array([s.frac_coords for s in sites])
    pairs = cell.lattice.get_all_distances(taken, taken)
    assert pairs[np.triu_indices(3, 1)].min() >= 1.8
    assert min_image_distances(cell.lattice, taken, cell.frac_coords).min() >= 1.8
    assert interstitial.lithium_sites(cell, OXI, 3) == sites  # deterministic


def test_a_larger_minimum_distance_only_removes_sites() -> None:
    cell = with_al(li4ges4())
    near = interstitial.lithium_sites(cell, OXI, 1, min_distance=1.8, resolution=0.3)
    far = interstitial.lithium_sites(cell, OXI, 1, min_distance=2.4, resolution=0.3)
    assert far[0].site_energy_ev >= near[0].site_energy_ev
    point = np.array([far[0].frac_coords])
    assert min_image_distances(cell.lattice, point, cell.frac_coords)[0] >= 2.4


def test_no_site_far_enough_is_a_reason_not_a_candidate() -> None:
    dense = li4ges4(3.2)  # every point of the cell within 1.8 Å of an atom
    with pytest.raises(ValueError, match=r"only 0 site\(s\) .* at least 1.8 Å"):
        interstitial.lithium_sites(with_al(dense), OXI, 1)
    out = substitute.explicit(dense, "p", {"Ge": ["Al"]}, aliovalent=True)
    assert [c.substitution for c in out.candidates] == [""]
    name, reason = out.skipped[0]
    assert name == "Ge->Al" and "needs 1 interstitial Li per cell" in reason


def test_a_framework_without_bvse_parameters_is_a_reason() -> None:
    cell = with_al(li4ges4())
    with pytest.raises(ValueError, match="no BVSE landscape"):
        interstitial.lithium_sites(cell, {"Li": 1.0, "Al": 3.0, "S": -1.0}, 1)  # no S-


def test_nearest_distances_match_pymatgens_minimum_image() -> None:
    cell = Structure(Lattice.from_parameters(5.0, 6.0, 7.0, 80, 100, 110), ["Li", "S"],
                     [[0.1, 0.2, 0.3], [0.6, 0.7, 0.9]])  # fmt: skip
    points = interstitial.grid_points((7, 6, 5))
    got = interstitial.nearest_distances(cell.lattice, points, cell.frac_coords, 2.0)
    want = min_image_distances(cell.lattice, points, cell.frac_coords)
    inside = want < 2.0
    assert got[inside] == pytest.approx(want[inside])
    assert np.all(got[~inside] >= 2.0 - 1e-9)
