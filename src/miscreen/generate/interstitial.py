"""Interstitial Li for an aliovalent substitution that lowers the cation charge (Al3+ for
Ge4+: Li10GeP2S12 -> Li11AlP2S12).

The sites are the Li+ site-energy landscape of BVSE (softBV's method, Chen, Wong & Adams,
Acta Cryst. B 75, 18 (2019), with bvlain's potentials and parameters, Dembitskiy et al.,
https://github.com/dembart/BVlain; :func:`miscreen.verify.bvse_grid.site_energy_grid`, the
landscape ``verify bvse`` percolates): a Li+ test ion on a 0.2 Å grid over the substituted
cell with every Li removed, its energy a Morse bond-valence term to each anion and a screened
Coulomb repulsion from each cation. Li is added greedily, one per step, at the grid point of
lowest energy that lies at least ``min_distance`` from every atom of the cell (the Li kept
included, which the landscape does not see) and from every Li added before it; ties go to
the lower grid index, so the result is deterministic. The landscape is computed once: the
added Li repel each other only through the minimum distance. The cell then relaxes as every
candidate does.

The minimum distance, 1.8 Å, lies below the shortest Li-anion bonds of the parents this is
meant for (Li-O about 1.9-2.1 Å, Li-S 2.4-2.6 Å, Li-Se 2.5-2.7 Å), so it never excludes a
site at a bonding distance from the anions, whose Morse term already keeps the minimum away
from them (in Li11AlP2S12 from the ordered LGPS cell the two sites lie 2.6 Å from four S);
and it lies above the 1.73 Å between the partially occupied Li sites of LGPS that cannot
be held together, so two Li never share such a pair, nor a kept Li's own site. The
relaxation does the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Lattice, Structure
from scipy.spatial import cKDTree

from miscreen.verify.bvse_grid import RESOLUTION_A, site_energy_grid
from miscreen.verify.bvse_params import BVSEError

LITHIUM = "Li"
MIN_DISTANCE_A = 1.8


@dataclass(frozen=True)
class AddedLithium:
    """One interstitial Li: where it went (fractional coordinates of the cell before the
    relaxation) and its BVSE site energy, in eV above the landscape's minimum."""

    frac_coords: tuple[float, float, float]
    site_energy_ev: float


def grid_points(shape: tuple[int, int, int]) -> np.ndarray:
    """Fractional coordinates of the periodic grid ``i / shape``, in the order of the
    flattened energy grid (C order), shape (n, 3)."""
    axes = [np.arange(n) / n for n in shape]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


def nearest_distances(
    lattice: Lattice, points: np.ndarray, frac: np.ndarray, reach: float
) -> np.ndarray:
    """Distance (Å) from each fractional point to the nearest periodic image of the sites
    ``frac``, exact up to ``reach`` Å (beyond it: ``inf``)."""
    if len(frac) == 0:
        return np.full(len(points), np.inf)
    normals = np.cross(lattice.matrix[[1, 2, 0]], lattice.matrix[[2, 0, 1]])
    spacing = lattice.volume / np.linalg.norm(normals, axis=1)  # between lattice planes
    span = [math.ceil(reach / s) + 1 for s in spacing]
    shifts = np.stack(
        np.meshgrid(*[np.arange(-k, k + 1) for k in span], indexing="ij"), axis=-1
    ).reshape(-1, 3)
    images = ((np.asarray(frac) % 1.0)[None, :, :] + shifts[:, None, :]).reshape(-1, 3)
    tree = cKDTree(lattice.get_cartesian_coords(images))
    dist, _ = tree.query(lattice.get_cartesian_coords(points % 1.0), distance_upper_bound=reach)
    return dist


def lithium_sites(
    structure: Structure,
    oxi: dict[str, float],
    count: int,
    min_distance: float = MIN_DISTANCE_A,
    resolution: float = RESOLUTION_A,
) -> list[AddedLithium]:
    """The ``count`` sites where Li is added to the ordered ``structure`` (one oxidation
    state per element in ``oxi``), lowest BVSE site energy first (see the module). Raises
    ``ValueError`` with the reason when fewer sites lie far enough from every atom."""
    decorated = structure.copy()
    decorated.remove_oxidation_states()
    decorated.add_oxidation_state_by_element(oxi)
    try:
        energy = site_energy_grid(decorated, resolution=resolution)
    except BVSEError as exc:
        raise ValueError(f"no BVSE landscape to place interstitial Li on: {exc}") from None
    values = energy.reshape(-1) - float(energy.min())
    points = grid_points(energy.shape)
    lattice = structure.lattice
    free = nearest_distances(lattice, points, structure.frac_coords, min_distance) >= min_distance
    order = np.flatnonzero(free)
    order = order[np.argsort(values[order], kind="stable")]
    added: list[AddedLithium] = []
    for index in order:
        if len(added) == count:
            break
        point = points[index]
        if added:
            taken = np.array([a.frac_coords for a in added])
            if nearest_distances(lattice, point[None, :], taken, min_distance)[0] < min_distance:
                continue
        coords = tuple(float(x) for x in point)
        added.append(AddedLithium(coords, round(float(values[index]), 4)))  # type: ignore[arg-type]
    if len(added) < count:
        raise ValueError(
            f"needs {count} interstitial Li per cell; only {len(added)} site(s) of the BVSE "
            f"grid lie at least {min_distance:g} Å from every atom and from each other"
        )
    return added


def with_lithium(
    structure: Structure,
    oxi: dict[str, float],
    count: int,
    min_distance: float = MIN_DISTANCE_A,
) -> tuple[Structure, list[AddedLithium]]:
    """``structure`` with ``count`` Li added at :func:`lithium_sites`, and the sites."""
    sites = lithium_sites(structure, oxi, count, min_distance)
    out = structure.copy()
    for site in sites:
        out.append(LITHIUM, site.frac_coords)
    return out, sites
