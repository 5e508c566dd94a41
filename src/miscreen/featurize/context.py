"""Per-structure intermediates computed once and shared by every featurizer.

Disorder model (used by every structure featurizer): each site carries an occupancy vector
over elements (``occ[site, element]``, summing to at most 1; the rest is vacancy). Site
statistics are occupancy-weighted averages, pair quantities are weighted by the product of
the two sites' occupancies, i.e. expectations over a random (uncorrelated) filling of the
partially occupied sites. Pairs closer than ``SPLIT_FACTOR`` times the sum of the two
sites' covalent radii cannot be occupied at once (split sites, alternative positions) and
are dropped from all pair statistics. Dummy species (e.g. vacancy placeholders) count as
vacancy. The per-site reductions over the neighbour list (``group_min``/``max``/``sum``,
Hoppe's ECoN) live here too, beside the context that caches the shared ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
from pymatgen.core import Composition, Element, Species, Structure
from pymatgen.core.units import Length, Mass
from pymatgen.optimization.neighbors import find_points_in_spheres

from miscreen.featurize.oxidation import Oxidation, guess

CUTOFF = 6.0  # Angstrom: one neighbour list per structure serves every featurizer
SPLIT_FACTOR = 0.6
NUMERICAL_TOL = 1e-8  # get_neighbor_list's default
_AMU_IN_G = float(Mass(1.0, "amu").to("g"))  # pymatgen's conversion factors
_CUBIC_ANGSTROM_IN_CM3 = float(Length(1, "ang").to("cm") ** 3)


@dataclass
class StructureContext:
    """A structure reduced to numpy arrays, its oxidation states and one neighbour list."""

    elements: tuple[str, ...]
    occ: np.ndarray  # (n_sites, n_elements) occupancies
    cart: np.ndarray  # (n_sites, 3) Cartesian coordinates
    volume: float
    density: float
    oxidation: Oxidation
    center: np.ndarray  # (n_pairs,) neighbour list, each pair once per direction
    neighbor: np.ndarray
    dist: np.ndarray
    vec: np.ndarray  # (n_pairs, 3) displacement center -> neighbour image

    @property
    def n_sites(self) -> int:
        return int(self.occ.shape[0])

    def column(self, symbols: frozenset[str] | set[str]) -> np.ndarray:
        """Per-site total occupancy by the given elements."""
        idx = [i for i, el in enumerate(self.elements) if el in symbols]
        return self.occ[:, idx].sum(axis=1) if idx else np.zeros(self.n_sites)

    @cached_property
    def site_total(self) -> np.ndarray:
        return self.occ.sum(axis=1)

    @cached_property
    def li(self) -> np.ndarray:
        return self.column({"Li"})

    @cached_property
    def anion(self) -> np.ndarray:
        return self.column(set(self.oxidation.anions))

    @cached_property
    def cation(self) -> np.ndarray:
        return self.site_total - self.anion

    @cached_property
    def has_anions(self) -> bool:
        return bool(self.anion.sum() > 0)

    @cached_property
    def cation_econ(self) -> tuple[np.ndarray, np.ndarray]:
        """Hoppe's ECoN of each cation by the anions around it and its mean bond length
        (:func:`effective_cn`; every atom by every atom where the structure has no anion):
        the coordination of the structure group and, at the Li sites, of the Li group."""
        cat_w = self.cation if self.has_anions else self.site_total
        an_w = self.anion if self.has_anions else self.site_total
        weight = an_w[self.neighbor] * (cat_w[self.center] > 0)
        return effective_cn(self.center, self.dist, weight, self.n_sites)

    @cached_property
    def charge(self) -> np.ndarray:
        """Occupancy-weighted oxidation state per element column."""
        return np.array([self.oxidation.states.get(el, 0.0) for el in self.elements])

    @cached_property
    def site_radius(self) -> np.ndarray:
        """Occupancy-weighted ionic radius per site (over occupied fraction)."""
        r = np.array([ionic_radius(el, self.oxidation.states.get(el, 0.0)) for el in self.elements])
        return _weighted_mean_rows(self.occ, r)

    @cached_property
    def anion_radius(self) -> np.ndarray:
        """Occupancy-weighted ionic radius of the anion part of each site (0 where none)."""
        mask = np.array([el in self.oxidation.anions for el in self.elements], dtype=float)
        r = np.array([ionic_radius(el, self.oxidation.states.get(el, 0.0)) for el in self.elements])
        return _weighted_mean_rows(self.occ * mask, r)


def build_context(structure: Structure, cutoff: float = CUTOFF) -> StructureContext:
    """Arrays, oxidation states and the neighbour list of ``structure`` (done once)."""
    elements, occ, given = _occupancies(structure)
    if occ.sum() <= 0:
        raise ValueError("structure has no atoms (all sites vacant or dummy species)")
    species = structure.composition  # built from the sites on every access: once here
    oxidation = guess(species.element_composition, given)
    cart = structure.cart_coords
    center, neighbor, images, dist = neighbor_list(structure, cart, cutoff)
    vec = cart[neighbor] + images @ structure.lattice.matrix - cart[center]
    rcov = _weighted_mean_rows(occ, np.array([_covalent(el) for el in elements]))
    keep = dist >= SPLIT_FACTOR * (rcov[center] + rcov[neighbor])
    return StructureContext(
        elements=elements,
        occ=occ,
        cart=cart,
        volume=float(structure.volume),
        density=density(species, float(structure.volume)),
        oxidation=oxidation,
        center=center[keep].astype(np.int64),
        neighbor=neighbor[keep].astype(np.int64),
        dist=dist[keep],
        vec=vec[keep],
    )


def neighbor_list(
    structure: Structure, cart: np.ndarray, cutoff: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``structure.get_neighbor_list(cutoff)``: the same call of pymatgen's compiled
    ``find_points_in_spheres`` on the Cartesian coordinates already at hand (``cart``),
    without rebuilding them from the sites twice and without its Python list of one flag
    per pair; the same arrays."""
    center, neighbor, images, dist = find_points_in_spheres(
        cart,
        cart,
        r=cutoff,
        pbc=np.ascontiguousarray(structure.pbc, dtype=np.int64),
        lattice=np.ascontiguousarray(structure.lattice.matrix, dtype=float),
        tol=NUMERICAL_TOL,
    )
    keep = ~((center == neighbor) & (dist <= NUMERICAL_TOL))  # a site is not its own neighbour
    return center[keep], neighbor[keep], images[keep], dist[keep]


def density(composition: Composition, volume: float) -> float:
    """Density in g/cm^3, the same float as pymatgen's ``Structure.density`` (the same sum
    and conversion factors), without its unit arithmetic (a tenth of the cost)."""
    weight = sum(amount * float(el.atomic_mass) for el, amount in composition.items())
    return weight * _AMU_IN_G / (volume * _CUBIC_ANGSTROM_IN_CM3)


def _occupancies(structure: Structure) -> tuple[tuple[str, ...], np.ndarray, dict[str, float]]:
    """Element symbols, the (site x element) occupancy matrix and any given oxidation states."""
    symbols: list[str] = []
    col: dict[str, int] = {}
    given: dict[str, float] = {}
    complete = True
    rows: list[dict[int, float]] = []
    for site in structure:
        row: dict[int, float] = {}
        for sp, amount in site.species.items():
            sym = getattr(sp, "symbol", None)
            if sym is None or not Element.is_valid_symbol(sym):
                continue  # DummySpecies: treated as vacancy
            if sym not in col:
                col[sym] = len(symbols)
                symbols.append(sym)
            row[col[sym]] = row.get(col[sym], 0.0) + float(amount)
            q = getattr(sp, "oxi_state", None) if isinstance(sp, Species) else None
            if q is None:
                complete = False
            else:
                given[sym] = float(q)
        rows.append(row)
    occ = np.zeros((len(rows), len(symbols)))
    for i, row in enumerate(rows):
        for j, a in row.items():
            occ[i, j] = a
    return tuple(symbols), np.clip(occ, 0.0, 1.0), given if complete else {}


def _weighted_mean_rows(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Row-wise weighted mean of ``values`` (0 where a row has no weight)."""
    tot = weights.sum(axis=1)
    return np.divide(weights @ values, tot, out=np.zeros(len(tot)), where=tot > 0)


@lru_cache(maxsize=512)
def _covalent(symbol: str) -> float:
    """Covalent-like radius for the split-site rule (pymatgen atomic radius, 1.5 A if unknown)."""
    r = Element(symbol).atomic_radius
    return float(r) if r is not None else 1.5


@lru_cache(maxsize=2048)
def ionic_radius(symbol: str, state: float) -> float:
    """Shannon radius of the element at the nearest integer state, else averages, else atomic."""
    el = Element(symbol)
    q = round(state)
    if q != 0:
        try:
            r = Species(symbol, q).ionic_radius
            if r is not None:
                return float(r)
        except (ValueError, KeyError):
            pass
    for r in (
        el.average_anionic_radius if state < 0 else el.average_cationic_radius,
        el.average_ionic_radius,
        el.atomic_radius,
    ):
        if r is not None and float(r) > 0:
            return float(r)
    return 1.5


def group_min(keys: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Minimum of ``values`` per key in ``range(n)`` (inf where a key has none)."""
    out = np.full(n, np.inf)
    np.minimum.at(out, keys, values)
    return out


def group_max(keys: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Maximum of ``values`` per key in ``range(n)`` (-inf where a key has none)."""
    out = np.full(n, -np.inf)
    np.maximum.at(out, keys, values)
    return out


def group_sum(keys: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(keys, weights=values, minlength=n)


def effective_cn(
    center: np.ndarray, dist: np.ndarray, weight: np.ndarray, n: int, iterations: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Hoppe's effective coordination number and mean bond length per site, vectorised.

    ``weight`` is the neighbour's occupancy by the counted species, so a half-occupied
    neighbour counts half. Sites without weighted neighbours get NaN.
    """
    ok = weight > 0
    c, d, w = center[ok], dist[ok], weight[ok]
    lav = group_min(c, d, n)
    for _ in range(iterations):
        e = w * np.exp(1.0 - (d / lav[c]) ** 6)
        num, den = group_sum(c, e * d, n), group_sum(c, e, n)
        lav = np.divide(num, den, out=np.full(n, np.inf), where=den > 0)
    e = w * np.exp(1.0 - (d / lav[c]) ** 6)
    econ = group_sum(c, e, n)
    has = np.isfinite(lav)
    return np.where(has, econ, np.nan), np.where(has, lav, np.nan)
