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
CHUNK_PAIRS = 1 << 18  # pairs per step of the periodic grid (~20 MB of temporaries)
LINES_PER_BATCH = 200_000  # (site, grid line) pairs set up at once (~5 MB per array)


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
    return periodic_site_energies(
        fw, structure.lattice, grid_shape(structure, resolution), r_cut, deadline
    )


def periodic_site_energies(
    fw: Framework,
    lattice: Lattice,
    shape: tuple[int, int, int],
    r_cut: float = R_CUT_A,
    deadline: float | None = None,
) -> np.ndarray:
    """Li+ energy (eV) on the periodic grid ``i / shape`` of ``lattice``, array of ``shape``.

    The same pairs and pair tables as :func:`site_energies` on these points, found without a
    neighbour search: for each framework site and each grid line along c (indices i, j,
    unwrapped) the points within ``r_cut`` are one run of k, solved from the quadratic
    ``|p0 + k c / n_c|^2 <= r_cut^2``. Sites go in batches of lines, pairs in chunks.
    """
    tables = _pair_tables(fw, r_cut)
    reach = _reach(lattice, r_cut)
    per_site = math.prod(int(np.floor(2 * reach[x] * shape[x])) + 2 for x in (0, 1))
    batch = max(1, LINES_PER_BATCH // per_site)
    energy = np.zeros(shape)
    for lo in range(0, len(fw.frac), batch):
        rows = _grid_lines(fw.frac[lo : lo + batch], lattice, shape, reach, r_cut)
        energy += _line_sums(rows, tables.offset[lo : lo + batch], tables, shape, deadline)
    return energy


def _line_sums(
    rows: _GridLines,
    offset: np.ndarray,
    tables: _PairTables,
    shape: tuple[int, int, int],
    deadline: float | None,
) -> np.ndarray:
    """Energy on the grid from the pairs of ``rows`` (``offset``: table row of each site)."""
    count = rows.k_hi - rows.k_lo + 1
    ends = np.cumsum(count)
    # Lines are summed unwrapped along c, on ``tiles`` periods from ``k0``, then folded.
    nc = shape[2]
    k0 = int(rows.k_lo.min(initial=0)) // nc * nc
    tiles = -(-(int(rows.k_hi.max(initial=0)) + 1 - k0) // nc)
    width = tiles * nc
    energy = np.zeros(shape[0] * shape[1] * width)
    line_start = rows.line * width - k0  # flat index of the line's k = 0
    scale = 1.0 / tables.dr**2  # squared distances in squared table steps
    steps = np.arange(CHUNK_PAIRS + int(count.max(initial=0)))  # a chunk's pair indices
    start = 0
    while start < len(count):
        if deadline is not None and time.monotonic() > deadline:
            raise BVSETimeout("exceeded the time limit while building the energy grid")
        done = ends[start] - count[start]
        stop = max(int(np.searchsorted(ends, done + CHUNK_PAIRS, side="right")), start + 1)
        part = slice(start, stop)
        n = count[part]
        first = np.cumsum(n) - n - rows.k_lo[part]  # pair index of each line's k = 0
        size = int(n.sum())
        # t = |p0 + k c/n_c| / dr = sqrt(perp^2 + cv^2 (k - centre)^2) / dr
        x = steps[:size] - np.repeat(first + rows.centre[part], n)
        x *= x
        x *= rows.cv2 * scale
        x += np.repeat(rows.perp2[part] * scale, n)
        t = np.sqrt(x, out=x)
        i = t.astype(np.intp)  # r <= r_cut: the last step of a row at most (see _pair_tables)
        at = np.repeat(offset[rows.site[part]], n)
        at += i
        t -= i
        t *= np.take(tables.slope, at)
        t += np.take(tables.value, at)
        cell = steps[:size] + np.repeat(line_start[part] - first, n)
        energy += np.bincount(cell, t, minlength=len(energy))
        start = stop
    return energy.reshape(shape[0], shape[1], tiles, nc).sum(axis=2)


def _reach(lattice: Lattice, r_cut: float) -> np.ndarray:
    """``r_cut`` in fractions of each axis: the spacing of the lattice planes normal to it."""
    normals = np.cross(lattice.matrix[[1, 2, 0]], lattice.matrix[[2, 0, 1]])
    return r_cut / (lattice.volume / np.linalg.norm(normals, axis=1))


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
    reach = _reach(lattice, r_cut)
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
class _GridLines:
    """Runs ``k_lo..k_hi`` of grid points within r_cut of framework entry ``site`` along
    grid line ``line`` (``i * n_b + j``) parallel to c. Along it, the squared distance to
    the site is ``perp2 + cv2 * (k - centre)^2``."""

    site: np.ndarray
    line: np.ndarray
    k_lo: np.ndarray
    k_hi: np.ndarray
    centre: np.ndarray
    perp2: np.ndarray
    cv2: float


def _grid_lines(
    frac: np.ndarray,
    lattice: Lattice,
    shape: tuple[int, int, int],
    reach: np.ndarray,
    r_cut: float,
) -> _GridLines:
    """Every (site, i, j) grid line along c that passes within ``r_cut`` of the site
    (``reach``: :func:`_reach`)."""
    na, nb, nc = shape
    idx = []
    for axis in (0, 1):  # indices i (j) whose plane lies within reach of each site
        n = shape[axis]
        lo = np.ceil((frac[:, axis] - reach[axis]) * n).astype(int)
        idx.append(lo[:, None] + np.arange(int(np.floor(2 * reach[axis] * n)) + 2))
    a, b, c = lattice.matrix
    cv = c / nc
    cv2 = float(cv @ cv)
    da = (idx[0] / na - frac[:, [0]])[:, :, None, None] * a  # (m, ni, 1, 3)
    db = (idx[1] / nb - frac[:, [1]])[:, None, :, None] * b  # (m, 1, nj, 3)
    p0 = da + db - (frac[:, 2, None, None, None] * c)  # line's k = 0 point minus the site
    centre = -(p0 @ cv) / cv2
    perp2 = np.maximum(np.einsum("...x,...x->...", p0, p0) - cv2 * centre**2, 0.0)
    half2 = (r_cut**2 - perp2) / cv2
    half = np.sqrt(np.maximum(half2, 0.0))
    k_lo = np.ceil(centre - half).astype(int)
    k_hi = np.floor(centre + half).astype(int)
    keep = (half2 >= 0) & (k_hi >= k_lo)
    site = np.broadcast_to(np.arange(len(frac))[:, None, None], keep.shape)
    line = (idx[0][:, :, None] % na) * nb + idx[1][:, None, :] % nb
    return _GridLines(
        site=site[keep],
        line=np.broadcast_to(line, keep.shape)[keep],
        k_lo=k_lo[keep],
        k_hi=k_hi[keep],
        centre=centre[keep],
        perp2=perp2[keep],
        cv2=cv2,
    )


@dataclass(frozen=True)
class _PairTables:
    """Occupancy-weighted pair potentials on [0, r_cut], one row per distinct species.

    ``value[row0 + i] + w * slope[row0 + i]`` interpolates linearly at ``r = (i + w) * dr``;
    ``row0`` of framework entry ``k`` is ``offset[k]``. Zero beyond ``r_cut``. A distance of
    at most ``r_cut`` has ``i <= ceil(r_cut / dr)``, whose slope still lies in its row.
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
