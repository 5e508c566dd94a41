"""Bond-valence site energy (BVSE) Li-ion percolation barriers, seconds per structure.

The method is softBV's (Chen, Wong & Adams, Acta Cryst. B 75, 18 (2019)) as implemented by
``bvlain`` (Dembitskiy et al., https://github.com/dembart/BVlain): a Li+ test ion is placed
on a grid over the cell with every Li removed; its energy is a Morse bond-valence term to
each anion plus a screened Coulomb repulsion from each cation. The 1-D/2-D/3-D barrier is
the lowest energy above the grid minimum at which the region below it percolates through
the crystal in 1, 2 or 3 independent directions.

The force-field parameters, covalent radii and potential functions are bvlain's own (its
``data/`` tables and ``BVSEPotential``). The grid and the percolation analysis are written
here, because bvlain takes ordered structures only: each framework species contributes in
proportion to its site occupancy (mean-field), so disordered structures, the normal case
for solid electrolytes, need no ordering step. On bvlain's own grid the energies agree
with bvlain's to ~2 meV and its published LiFePO4 barriers are reproduced (tests); on the
periodic grid used here (bvlain's repeats the boundary planes) barriers differ from
bvlain's by grid sampling only (median 0.02 eV, max 0.06 eV: ``benchmarks/bvse.py``).

Defaults: bvlain's (0.2 A grid, f = 0.74, ASE covalent radii, 10 eV search window, 0.01 eV
bisection), with an 8 A pair cutoff instead of bvlain's "10 A but 100 nearest neighbours".

Oxidation states, in order (the one used is recorded): ``given`` (every species carries
one), ``bond-valence`` (pymatgen's ``BVAnalyzer``, structure-aware; ordered structures
only, and only if every anion it finds has Li+ BVSE parameters), ``composition`` (one state
per element from pymatgen's ICSD lists, charge-balanced within ``CHARGE_TOLERANCE``,
ranked by pymatgen's ICSD occurrence table).
"""

from __future__ import annotations

import functools
import itertools
import math
import pickle
import time
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pymatgen.core import Composition, Element, Lattice, Species, Structure
from scipy import ndimage
from scipy.spatial import cKDTree
from threadpoolctl import threadpool_limits

from miscreen import schema as S
from miscreen.fetch.local import reason_of
from miscreen.fetch.parsing import structure_from_json

STAGE = "verify"

# Output columns of barrier_table (index: schema.ID).
BVSE_E1D = "bvse_e1d_ev"
BVSE_E2D = "bvse_e2d_ev"
BVSE_E3D = S.BVSE_E3D  # the screen stage reads these two
BVSE_METHOD = S.BVSE_METHOD
BVSE_OXIDATION = "bvse_oxidation"
BVSE_COLUMNS = (BVSE_E1D, BVSE_E2D, BVSE_E3D, BVSE_METHOD, BVSE_OXIDATION)

# How disorder was handled (BarrierResult.method / BVSE_METHOD).
METHOD_ORDERED = "ordered"
METHOD_ORDERED_FRAMEWORK = "ordered framework"  # only Li sites partially occupied: exact
METHOD_OCCUPANCY = "occupancy-weighted"  # framework species weighted by site occupancy

# How oxidation states were obtained (BarrierResult.oxidation / BVSE_OXIDATION).
OXI_GIVEN, OXI_BOND_VALENCE, OXI_COMPOSITION = "given", "bond-valence", "composition"

MOBILE = "Li"
MOBILE_CHARGE = 1
# Defaults are bvlain's (README example and Lain.bvse_distribution) unless noted.
RESOLUTION_A = 0.2  # grid spacing
R_CUT_A = 8.0  # bvlain: 10 A, capped at 100 neighbours (6-10 A); see _pair_tables
SCREENING = 0.74  # Coulomb screening factor f
ENCUT_EV = 10.0  # barriers above this are reported as "no path" (NaN)
TOLERANCE_EV = 0.01  # bisection stops when the bracket is narrower than this
CHARGE_TOLERANCE = 0.05  # composition guess: |net charge| / total |charge|
TIME_LIMIT_S = 60.0
CHUNK_POINTS = 20_000  # grid points per k-d tree query (~3M pairs, ~150 MB)


class BVSEError(ValueError):
    """The structure cannot be treated (no Li, no framework, missing parameters...)."""


class BVSETimeout(TimeoutError):
    """The per-structure time limit was exceeded."""


@dataclass(frozen=True)
class BarrierResult:
    """Percolation barriers in eV (NaN: no percolating path below ``ENCUT_EV``)."""

    e_1d: float
    e_2d: float
    e_3d: float
    method: str
    oxidation: str
    seconds: float

    def as_row(self) -> dict[str, object]:
        return {
            BVSE_E1D: self.e_1d,
            BVSE_E2D: self.e_2d,
            BVSE_E3D: self.e_3d,
            BVSE_METHOD: self.method,
            BVSE_OXIDATION: self.oxidation,
        }


# --------------------------------------------------------------------------- parameters


@functools.cache
def _bvlain_tables() -> dict[str, Any]:
    """bvlain's softBV parameter tables, read once on first use (trusted package data)."""
    root = resources.files("bvlain") / "data"
    out: dict[str, Any] = {}
    for name in ("cation", "quantum_n"):
        with (root / f"{name}.pkl").open("rb") as fh:
            out[name] = pickle.load(fh)
    return out


def _covalent_radius(z: int, q: float, softbv: bool) -> float:
    from bvlain.data.covalent_radii import covalent_radii, covalent_radii_softbv

    if softbv:
        table = covalent_radii_softbv.get(z, {})
        if round(q) in table:
            return float(table[round(q)])
    return float(covalent_radii[z])


@dataclass(frozen=True)
class _Framework:
    """Non-Li species, one row per (site, species), with their BVSE partners' parameters."""

    frac: np.ndarray  # (m, 3) fractional coordinates
    weight: np.ndarray  # (m,) site occupancy of the species
    is_anion: np.ndarray  # (m,) Morse partner of Li+ (else a cation: Coulomb partner)
    morse: np.ndarray  # (m, 3) r_min, alpha, d0 (zeros for cations)
    coulomb: np.ndarray  # (m, 3) q, covalent radius, principal quantum number (zeros: anions)
    li: tuple[float, float, float]  # Li+: q, covalent radius, principal quantum number
    screening: float


def _framework(structure: Structure, softbv_radii: bool, screening: float) -> _Framework:
    """Parameters for every non-Li species of an oxidation-state-decorated structure."""
    tables = _bvlain_tables()
    z_li = Element(MOBILE).Z
    morse = tables["cation"][z_li][MOBILE_CHARGE]
    n_q = tables["quantum_n"]
    rows: list[tuple[Any, ...]] = []
    for site in structure:
        for sp, occ in site.species.items():
            if sp.symbol == MOBILE or occ <= 0:
                continue
            q = float(getattr(sp, "oxi_state", 0.0) or 0.0)
            if q < 0:
                key = round(q)
                if abs(q - key) > 1e-6 or key not in morse.get(sp.Z, {}):
                    raise BVSEError(f"no BVSE Morse parameters for Li+ with {sp.symbol}{q:+g}")
                p = morse[sp.Z][key]
                rows.append(
                    (site.frac_coords, occ, True, (p["r_min"], p["alpha"], p["d0"]), (0,) * 3)
                )
            elif q > 0:
                if sp.Z not in n_q:
                    raise BVSEError(f"bvlain has no BVSE Coulomb parameters for {sp.symbol}")
                coulomb = (q, _covalent_radius(sp.Z, q, softbv_radii), n_q[sp.Z])
                rows.append((site.frac_coords, occ, False, (0,) * 3, coulomb))
    if not rows:
        raise BVSEError("no framework left once Li is removed")
    frac, weight, is_anion, morse_p, coulomb_p = zip(*rows, strict=True)
    li = (float(MOBILE_CHARGE), _covalent_radius(z_li, MOBILE_CHARGE, softbv_radii), n_q[z_li])
    return _Framework(
        frac=np.asarray(frac, dtype=float) % 1.0,
        weight=np.asarray(weight, dtype=float),
        is_anion=np.asarray(is_anion, dtype=bool),
        morse=np.asarray(morse_p, dtype=float),
        coulomb=np.asarray(coulomb_p, dtype=float),
        li=(li[0], li[1], float(li[2])),
        screening=screening,
    )


# ------------------------------------------------------------------- oxidation states


def with_oxidation_states(
    structure: Structure, composition: Composition | None = None
) -> tuple[Structure, str]:
    """A copy of ``structure`` decorated with oxidation states, and how they were found.

    ``composition``: the material's own composition (e.g. OBELiX's ``True Composition``).
    It is used when the structure's composition cannot be charge-balanced, typically
    because its Li sites are missing (OBELiX's LLTO CIFs) or their occupancies are off:
    BVSE removes Li anyway, but the framework's states come from charge balance.
    """
    species = [sp for site in structure for sp in site.species]
    if all(isinstance(sp, Species) and sp.oxi_state is not None for sp in species) and any(
        (sp.oxi_state or 0) < 0 for sp in species
    ):
        return structure.copy(), OXI_GIVEN
    structure = structure.copy()
    structure.remove_oxidation_states()  # e.g. all-zero states in some pymatgen files
    if structure.is_ordered:  # on disordered cells it is slow and can give e.g. O- with La2+
        decorated = _bond_valence_states(structure)
        if decorated is not None:
            return decorated, OXI_BOND_VALENCE
    try:
        states = _composition_states(structure.composition.element_composition)
    except BVSEError:
        if composition is None:
            raise
        states = _composition_states(composition.element_composition)
        missing = {el.symbol for el in structure.composition.elements} - set(states)
        if missing:
            raise BVSEError(
                f"the structure has {sorted(missing)}, which its composition lacks"
            ) from None
    structure.add_oxidation_state_by_element(states)
    return structure, OXI_COMPOSITION


def _bond_valence_states(structure: Structure) -> Structure | None:
    """pymatgen's BVAnalyzer, kept only if every anion it finds has Li+ parameters."""
    from pymatgen.analysis.bond_valence import BVAnalyzer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            decorated = BVAnalyzer().get_oxi_state_decorated_structure(structure)
        except Exception:  # BVAnalyzer raises bare ValueError/RuntimeError/... on failure
            return None
    anions = {
        (sp.symbol, round(sp.oxi_state or 0)) for sp in decorated.species if (sp.oxi_state or 0) < 0
    }
    return decorated if anions <= _li_anions() else None


@functools.cache
def _li_anions() -> frozenset[tuple[str, int]]:
    """(element, charge) of the anions that have Li+ BVSE parameters (N3-, O2-, S2-, ...)."""
    table = _bvlain_tables()["cation"][Element(MOBILE).Z][MOBILE_CHARGE]
    return frozenset((Element.from_Z(int(z)).symbol, int(q)) for z in table for q in table[z])


@functools.cache
def _icsd_occurrence() -> dict[tuple[str, int], float]:
    """pymatgen's ICSD occurrence counts of each (element, oxidation state)."""
    import pymatgen.core
    from monty.serialization import loadfn

    data = loadfn(Path(pymatgen.core.__file__).parent / "icsd_bv.yaml")["occurrence"]
    out: dict[tuple[str, int], float] = {}
    for name, count in data.items():
        sp = Species.from_str(name)
        out[(sp.symbol, round(sp.oxi_state or 0))] = float(count)
    return out


def _composition_states(comp: Composition) -> dict[str, int]:
    """One oxidation state per element: charge-balanced within tolerance, most common.

    Candidates are pymatgen's ICSD (else common) states; negative ones only where Li+ has
    BVSE parameters with that anion, so the guess never invents e.g. C4- or O-. Li is +1.
    """
    if MOBILE not in {el.symbol for el in comp}:
        raise BVSEError("no Li in the structure or its composition")
    best = _balanced_states(comp, only_li_anions=True)
    if best is not None:
        return best
    other = _balanced_states(comp, only_li_anions=False)
    anions = sorted(
        f"{el}{q:+d}" for el, q in (other or {}).items() if (el, q) not in _li_anions() and q < 0
    )
    if anions:
        raise BVSEError(
            f"{comp.reduced_formula} needs the anion(s) {', '.join(anions)}, which have no Li+ "
            "BVSE parameters (only N3-, O2-, F-, S2-, Cl-, Se2-, Br-, Te2-, I-)"
        )
    raise BVSEError(f"no charge-balanced oxidation states for {comp.reduced_formula}")


def _balanced_states(comp: Composition, only_li_anions: bool) -> dict[str, int] | None:
    """Most common per-element states within ``CHARGE_TOLERANCE`` of neutral, or None."""
    symbols = [el.symbol for el in comp]
    amounts = np.array([comp[el] for el in comp], dtype=float)
    options: list[tuple[int, ...]] = []
    for el in comp:
        known = el.icsd_oxidation_states or el.common_oxidation_states or (0,)
        states = tuple(
            q for q in known if q > 0 or not only_li_anions or (el.symbol, q) in _li_anions()
        )
        options.append((MOBILE_CHARGE,) if el.symbol == MOBILE else states or (0,))
    occ = _icsd_occurrence()
    pick = np.indices([len(o) for o in options]).reshape(len(options), -1).T  # (k, n_el)
    combos = np.column_stack(
        [np.asarray(o, dtype=float)[pick[:, i]] for i, o in enumerate(options)]
    )
    prior = np.column_stack(
        [
            np.array([occ.get((s, q), 0.0) for q in o])[pick[:, i]]
            for i, (s, o) in enumerate(zip(symbols, options, strict=True))
        ]
    )
    net = np.abs(combos @ amounts) / np.maximum(np.abs(combos) @ amounts, 1e-9)
    ok = np.flatnonzero(net <= CHARGE_TOLERANCE)
    if ok.size == 0:
        return None
    best = ok[np.argmax(prior[ok] @ amounts)]
    return {s: round(q) for s, q in zip(symbols, combos[best], strict=True)}


# ------------------------------------------------------------------------ energy grid


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
    fw = _framework(structure, softbv_radii, screening)
    shape = grid_shape(structure, resolution)
    axes = [np.arange(n) / n for n in shape]
    points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    return site_energies(fw, structure.lattice, points, r_cut, deadline).reshape(shape)


def site_energies(
    fw: _Framework,
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


def _pair_tables(fw: _Framework, r_cut: float, dr: float = 1e-3) -> _PairTables:
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


# ------------------------------------------------------------------------- percolation

_FORWARD = [d for d in itertools.product((-1, 0, 1), repeat=3) if d > (0, 0, 0)]


@functools.lru_cache(maxsize=8)
def _wrap_links(shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voxel pairs adjacent across the cell boundary (26-connectivity) and their offset.

    Returns flat indices ``src``, ``dst`` and the lattice translation ``off`` (int, (n, 3))
    such that voxel ``dst`` in cell ``off`` touches voxel ``src`` in cell 0.
    """
    n = np.array(shape)
    on_face = np.zeros(shape, dtype=bool)
    on_face[[0, -1], :, :] = on_face[:, [0, -1], :] = on_face[:, :, [0, -1]] = True
    idx = np.argwhere(on_face)  # (b, 3)
    src, dst, off = [], [], []
    for d in _FORWARD:
        moved = idx + np.array(d)
        shift = np.floor_divide(moved, n)
        crossing = np.any(shift != 0, axis=1)
        src.append(np.ravel_multi_index(idx[crossing].T, shape))
        dst.append(np.ravel_multi_index((moved[crossing] % n).T, shape))
        off.append(shift[crossing])
    return np.concatenate(src), np.concatenate(dst), np.concatenate(off).astype(int)


def percolation_dimension(mask: np.ndarray) -> int:
    """Largest number of independent lattice directions (0-3) along which one connected
    component of the periodic boolean grid ``mask`` extends to infinity.

    Components are labelled inside the cell (26-connectivity, as bvlain), then joined across
    the cell faces with a union-find that tracks lattice offsets; a closed loop with a
    non-zero net offset is a percolation direction, and the rank of those is the dimension.
    """
    labels, count = ndimage.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
    if count == 0:
        return 0
    src, dst, off = _wrap_links(mask.shape)
    flat = labels.reshape(-1)
    la, lb = flat[src], flat[dst]
    keep = (la > 0) & (lb > 0)
    if not keep.any():
        return 0
    # One int64 key per (label a, label b, offset): a 1-D unique is much faster than rows.
    code = (off[keep] + 1) @ np.array([9, 3, 1])
    key = np.unique((la[keep].astype(np.int64) * (count + 1) + lb[keep]) * 27 + code)
    pair, code = np.divmod(key, 27)
    la_u, lb_u = np.divmod(pair, count + 1)
    links = np.column_stack([la_u, lb_u, code // 9 - 1, code // 3 % 3 - 1, code % 3 - 1])

    parent: dict[int, int] = {}
    shift: dict[int, np.ndarray] = {}  # offset of a label's cell relative to its parent's
    loops: dict[int, list[np.ndarray]] = {}

    def find(x: int) -> tuple[int, np.ndarray]:
        """Root of ``x`` and the offset of x's cell relative to the root's (compressing)."""
        if x not in parent:
            parent[x], shift[x] = x, np.zeros(3, dtype=int)
        path = []
        while parent[x] != x:
            path.append(x)
            x = parent[x]
        acc = np.zeros(3, dtype=int)
        for node in reversed(path):  # nearest the root first
            acc = acc + shift[node]
            parent[node], shift[node] = x, acc
        return x, (shift[path[0]] if path else acc)

    for a, b, *o in links.tolist():
        ra, pa = find(a)
        rb, pb = find(b)
        vec = pa + np.asarray(o) - pb  # cell of rb relative to ra
        if ra == rb:
            if vec.any():
                loops.setdefault(ra, []).append(vec)
        else:
            parent[rb], shift[rb] = ra, vec
            loops.setdefault(ra, []).extend(loops.pop(rb, []))
    return max(
        (int(np.linalg.matrix_rank(np.array(v, dtype=float))) for v in loops.values() if v),
        default=0,
    )


def percolation_barriers(
    energy: np.ndarray,
    *,
    encut: float = ENCUT_EV,
    tolerance: float = TOLERANCE_EV,
    deadline: float | None = None,
) -> tuple[float, float, float]:
    """1-D, 2-D, 3-D percolation energies (eV above the grid minimum; NaN above ``encut``).

    Bisection on the threshold, as bvlain: the region ``energy - min < t`` is tested for
    percolation; the reported value is the upper end of the final bracket.
    """
    region = energy - energy.min()
    seen: dict[float, int] = {}  # threshold -> dimension, shared by the three searches

    def dim_at(t: float) -> int:
        if t not in seen:
            if deadline is not None and time.monotonic() > deadline:
                raise BVSETimeout("exceeded the time limit in the percolation search")
            seen[t] = percolation_dimension(region < t)
        return seen[t]

    out: list[float] = []
    for d in (1, 2, 3):
        lo, hi, barrier = 0.0, encut, math.nan
        while hi - lo > tolerance:
            mid = 0.5 * (lo + hi)
            if dim_at(mid) >= d:
                hi = barrier = mid
            else:
                lo = mid
        out.append(round(barrier, 4))
    return out[0], out[1], out[2]


# ---------------------------------------------------------------------------- public API


def disorder_method(structure: Structure) -> str:
    """``ordered``, ``ordered framework`` (only Li sites disordered) or ``occupancy-weighted``."""
    if structure.is_ordered:
        return METHOD_ORDERED
    for site in structure:
        other = [occ for sp, occ in site.species.items() if sp.symbol != MOBILE]
        if other and (len(site.species) > 1 or abs(other[0] - 1.0) > 1e-6):
            return METHOD_OCCUPANCY
    return METHOD_ORDERED_FRAMEWORK


def bvse_barriers(
    structure: Structure,
    *,
    composition: Composition | str | None = None,
    resolution: float = RESOLUTION_A,
    r_cut: float = R_CUT_A,
    encut: float = ENCUT_EV,
    screening: float = SCREENING,
    softbv_radii: bool = False,
    time_limit_s: float | None = None,
) -> BarrierResult:
    """BVSE Li+ percolation barriers of one structure (ordered or disordered).

    ``composition``: the material's composition, a fallback for charge balance when the
    structure's own cannot be balanced (e.g. no Li positions). ``softbv_radii``: softBV's
    covalent radii in the Coulomb screening instead of ASE's (bvlain's
    ``use_softbv_covalent_radii``). Raises :class:`BVSEError` for structures that cannot
    be treated and :class:`BVSETimeout` past ``time_limit_s`` (checked between chunks of
    work). Runs on one thread (BLAS included).
    """
    start = time.monotonic()
    deadline = None if time_limit_s is None else start + time_limit_s
    comp = Composition(composition) if isinstance(composition, str) else composition
    if not any(
        MOBILE in {el.symbol for el in c.elements}
        for c in (structure.composition, comp)
        if c is not None
    ):
        raise BVSEError("no Li in the structure or its composition")
    method = disorder_method(structure)
    with threadpool_limits(limits=1):
        decorated, oxidation = with_oxidation_states(structure, comp)
        energy = site_energy_grid(
            decorated,
            resolution=resolution,
            r_cut=r_cut,
            screening=screening,
            softbv_radii=softbv_radii,
            deadline=deadline,
        )
        e1, e2, e3 = percolation_barriers(energy, encut=encut, deadline=deadline)
    return BarrierResult(e1, e2, e3, method, oxidation, time.monotonic() - start)


def barrier_table(
    records: pd.DataFrame, time_limit_s: float = TIME_LIMIT_S, **options: Any
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """BVSE barriers for every record -> (table indexed by ``id``, failures).

    ``records`` has ``id``, ``source`` and ``structure`` (JSON of ``Structure.as_dict()`` or
    missing), and optionally ``composition`` (charge-balance fallback). A row that
    cannot be treated (no structure, unreadable JSON, no Li, missing parameters, over
    ``time_limit_s`` seconds for one structure) becomes a failure row with the reason; the
    others are unaffected. ``options`` go to :func:`bvse_barriers`.
    """
    rows: list[dict[str, object]] = []
    failures: list[dict[str, str]] = []
    sources = records[S.SOURCE] if S.SOURCE in records else pd.Series("", index=records.index)
    structures = (
        records[S.STRUCTURE] if S.STRUCTURE in records else pd.Series(None, index=records.index)
    )
    compositions = (
        dict(zip(records[S.ID].astype(str), records[S.COMPOSITION], strict=True))
        if S.COMPOSITION in records
        else {}
    )
    for rid, source, text in zip(records[S.ID], sources, structures, strict=True):
        rid, source = str(rid), "" if pd.isna(source) else str(source)
        if not isinstance(text, str) or not text.strip():
            failures.append(S.failure(rid, source, STAGE, "no structure: BVSE needs positions"))
            continue
        try:
            structure = structure_from_json(text)
        except Exception as exc:  # malformed JSON or dict: say so, keep going
            failures.append(S.failure(rid, source, STAGE, f"unreadable structure JSON: {exc}"))
            continue
        comp = compositions.get(rid)
        try:
            result = bvse_barriers(
                structure,
                composition=comp if isinstance(comp, str) and comp else None,
                time_limit_s=time_limit_s,
                **options,
            )
        except BVSETimeout:
            reason = f"BVSE exceeded the per-structure time limit of {time_limit_s:g} s"
            failures.append(S.failure(rid, source, STAGE, reason))
            continue
        except Exception as exc:  # one odd structure must not lose the others' barriers
            failures.append(S.failure(rid, source, STAGE, f"BVSE failed: {reason_of(exc)}"))
            continue
        rows.append({S.ID: rid, **result.as_row()})
    table = pd.DataFrame(rows, columns=[S.ID, *BVSE_COLUMNS]).set_index(S.ID)
    for col in (BVSE_E1D, BVSE_E2D, BVSE_E3D):
        table[col] = table[col].astype(float)
    failure_table = (
        pd.DataFrame(failures, columns=list(S.FAILURE_COLUMNS)) if failures else S.empty_failures()
    )
    return table, failure_table
