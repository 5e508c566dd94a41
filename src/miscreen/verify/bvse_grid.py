"""The Li+ site-energy grid of BVSE: a test ion at every grid point of the cell.

Its energy is a Morse bond-valence term to each anion plus a screened Coulomb repulsion from
each cation (bvlain's ``BVSEPotential``), every framework species weighted by its site
occupancy. The grid is periodic (bvlain's repeats the boundary planes).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Lattice, Structure
from scipy.spatial import cKDTree

from miscreen.verify.bvse_params import (
    SCREENING,
    BVSETimeout,
    Framework,
    framework_parameters,
)

# Defaults are bvlain's (README example and Lain.bvse_distribution) unless noted.
RESOLUTION_A = 0.2  # grid spacing
R_CUT_A = 8.0  # bvlain: 10 A, capped at 100 neighbours (6-10 A); see _pair_tables
CHUNK_POINTS = 20_000  # grid points per k-d tree query (~3M pairs, ~150 MB)


def grid_shape(structure: Structure, resolution: float = RESOLUTION_A) -> tuple[int, int, int]:
    """Periodic grid points along a, b, c: spacing at most ``resolution``."""
    a, b, c = (max(1, math.ceil(x / resolution)) for x in structure.lattice.abc)
    return a, b, c


def site_energy_grid(
    structure: Structure,
    *,
    resolution: float = RESOLUTION_A,
    r_cut: float = R_CUT_A,
    screening: float = SCREENING,
    softbv_radii: bool = False,
    deadline: float | None = None,
) -> np.ndarray:
    """Li+ site energy (eV, shape ``grid_shape``) on a periodic grid; oxidation states required.

    Sum over framework species within ``r_cut`` of each point, each weighted by its
    occupancy: Morse (anions) and screened Coulomb (cations), as in bvlain/softBV.
    """
    fw = framework_parameters(structure, softbv_radii, screening)
    shape = grid_shape(structure, resolution)
    axes = [np.arange(n) / n for n in shape]
    points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    return site_energies(fw, structure.lattice, points, r_cut, deadline).reshape(shape)


def site_energies(
    fw: Framework,
    lattice: Lattice,
    points: np.ndarray,
    r_cut: float = R_CUT_A,
    deadline: float | None = None,
) -> np.ndarray:
    """Li+ energy (eV) at fractional ``points`` (n, 3) of ``lattice``.

    Pairs within ``r_cut`` come from a k-d tree over the framework's periodic images, in
    chunks of grid points (bounded memory); each pair's energy is looked up in
    :func:`_pair_tables` and weighted by the species' occupancy.
    """
    normals = np.cross(lattice.matrix[[1, 2, 0]], lattice.matrix[[2, 0, 1]])
    reach = r_cut / (lattice.volume / np.linalg.norm(normals, axis=1))  # in fractions
    span = np.ceil(reach).astype(int) + 1
    shifts = np.stack(
        np.meshgrid(*[np.arange(-k, k + 1) for k in span], indexing="ij"), axis=-1
    ).reshape(-1, 3)
    images = (fw.frac[None, :, :] + shifts[:, None, :]).reshape(-1, 3)
    owner = np.tile(np.arange(len(fw.frac)), len(shifts))
    near = np.all((images > points.min(0) - reach) & (images < points.max(0) + reach), axis=1)
    tree = cKDTree(lattice.get_cartesian_coords(images[near]))
    tables = _pair_tables(fw, r_cut)
    row = tables.offset[owner[near]]  # table row of each image
    cart = lattice.get_cartesian_coords(points)
    energy = np.empty(len(cart))
    for start in range(0, len(cart), CHUNK_POINTS):
        if deadline is not None and time.monotonic() > deadline:
            raise BVSETimeout("exceeded the time limit while building the energy grid")
        pts = cart[start : start + CHUNK_POINTS]
        pairs = cKDTree(pts).sparse_distance_matrix(tree, r_cut, output_type="ndarray")
        t = pairs["v"] * (1.0 / tables.dr)
        i = t.astype(np.intp)
        at = row[pairs["j"]] + i
        e = tables.value[at] + (t - i) * tables.slope[at]
        energy[start : start + len(pts)] = np.bincount(pairs["i"], e, minlength=len(pts))
    return energy


@dataclass(frozen=True)
class _PairTables:
    """Occupancy-weighted pair potentials on [0, r_cut], one row per distinct species.

    ``value[row0 + i] + w * slope[row0 + i]`` interpolates linearly at ``r = (i + w) * dr``;
    ``row0`` of framework entry ``k`` is ``offset[k]``. Zero beyond ``r_cut``.
    """

    value: np.ndarray
    slope: np.ndarray
    offset: np.ndarray
    dr: float


def _pair_tables(fw: Framework, r_cut: float, dr: float = 1e-3) -> _PairTables:
    """Tabulate each distinct (potential, occupancy) once, with bvlain's potential forms.

    Steps of 1 mA make linear interpolation exact to ~1e-5 eV where energies matter; the
    Coulomb term is clamped at 0.01 A (a point on a cation: huge, finite). Beyond 8 A the
    largest Morse tail (Li-Te) is below 1 meV, under the bisection tolerance.
    """
    from bvlain.potentials import BVSEPotential

    params = np.column_stack([fw.is_anion, fw.morse, fw.coulomb, fw.weight])
    unique, kind = np.unique(params, axis=0, return_inverse=True)
    size = int(np.ceil(r_cut / dr)) + 2
    r = np.maximum(np.arange(size) * dr, 1e-2)
    q_li, rc_li, n_li = fw.li
    table = np.zeros((len(unique), size))
    for row, (anion, r_min, alpha, d0, q, rc, n, weight) in zip(table, unique, strict=True):
        if anion:
            row[:] = weight * BVSEPotential.Morse(r, r_min, d0, alpha)
        else:
            row[:] = weight * BVSEPotential.Coulomb(r, q_li, q, rc_li, rc, n_li, n, fw.screening)
    table[:, r > r_cut] = 0.0
    slope = np.zeros_like(table)
    slope[:, :-1] = np.diff(table, axis=1)
    return _PairTables(table.reshape(-1), slope.reshape(-1), kind.reshape(-1) * size, dr)
