"""The ``li`` group: descriptors of the Li sites and Li hops of a structure.

Needs positions: Li content and Li-site occupancy, Li–Li and Li–anion distance statistics,
Li coordination (ECoN by anions), Li bond-valence sums, the free radius of each Li site and
the bottleneck of straight Li–Li hops (clearance of the hop midpoint from the nearest anion
surface), the anion framework's volume per anion, free volume and how close its geometry is
to bcc or fcc packing (bcc anion frameworks, as in LGPS and the argyrodites, give low
migration barriers: Wang et al., Nat. Mater. 14, 1026 (2015)).

Disorder: Li counts and site statistics are occupancy-weighted; a site hosts Li when its Li
occupancy is positive. The anion sublattice for the bcc/fcc comparison is the set of sites
at least half occupied by anions (mixed anion sites such as S/Cl in argyrodites count as
one anion site).

Li–Li nearest distances beyond the neighbour-list cutoff (6 A) are reported as 6 A.
Documented NaNs: every Li-site feature when the structure holds no Li site (some OBELiX
CIFs omit the unlocated Li, e.g. the LLTO perovskites); hop features when no two Li sites
lie within 6 A (e.g. NASICONs with Li only on M1 sites); Li–anion features when the
material has no anion (e.g. an alloy).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from pymatgen.analysis.bond_valence import BV_PARAMS
from pymatgen.core import Element

from miscreen.featurize.base import Entry, Featurizer, wstats
from miscreen.featurize.context import (
    CUTOFF,
    StructureContext,
    effective_cn,
    group_max,
    group_min,
    group_sum,
    ionic_radius,
)

HOP_CUTOFF = CUTOFF  # hops up to the neighbour-list cutoff
BV_B = 0.37
N_SHELL = 14
# Sorted distances to the 14 nearest lattice points divided by (volume per point)^(1/3).
BCC_SHELL = np.array([3**0.5 / 2 / 0.5 ** (1 / 3)] * 8 + [1 / 0.5 ** (1 / 3)] * 6)
FCC_SHELL = np.array([2**-0.5 / 0.25 ** (1 / 3)] * 12 + [1 / 0.25 ** (1 / 3)] * 2)
WANG = (
    "Y. Wang et al., Design principles for solid-state lithium superionic conductors, "
    "Nat. Mater. 14 (2015) 1026-1031"
)
BRESE = (
    "N. E. Brese and M. O'Keeffe, Bond-valence parameters for solids, "
    "Acta Cryst. B47 (1991) 192-197"
)


class LiSiteFeaturizer(Featurizer):
    """Li-site, Li-hop and anion-framework descriptors from one structure."""

    name = "li"
    version = "2"
    needs_structure = True

    def feature_labels(self) -> list[str]:
        names = [
            "li_fraction",
            "li_site_fraction",
            "li_site_density",
            "li_site_occupancy",
            "li_li_nn_mean",
            "li_li_nn_min",
            "li_li_nn_std",
            "li_li_cn_3A",
            "li_li_cn_4A",
            "li_anion_nn_mean",
            "li_anion_nn_min",
            "li_anion_nn_std",
            "li_cn_mean",
            "li_cn_std",
            "li_free_radius_mean",
            "li_free_radius_min",
            "li_bvs_mean",
            "li_bvs_std",
            "li_bvs_dev",
            "hop_bottleneck_mean",
            "hop_bottleneck_min",
            "hop_bottleneck_max",
            "hop_length_mean",
            "volume_per_anion",
            "anion_free_volume",
            "anion_nn_norm",
            "anion_bcc_rmsd",
            "anion_fcc_rmsd",
        ]
        return [f"{self.name}:{n}" for n in names]

    def featurize(self, entry: Entry) -> list[float]:
        ctx = entry.context
        if ctx is None:
            raise ValueError("the Li-site featurizer needs a structure")
        return [*_li_content(ctx), *_li_li(ctx), *_li_anion(ctx), *_hops(ctx), *_framework(ctx)]

    def citations(self) -> list[str]:
        return [WANG, BRESE]


def _li_content(ctx: StructureContext) -> list[float]:
    """Li atom fraction, Li-site fraction, Li-site density (per nm^3) and Li-site occupancy."""
    li_sites = ctx.li > 0
    n_li = float(ctx.li.sum())
    n_sites = float(li_sites.sum())
    return [
        n_li / float(ctx.site_total.sum()),
        n_sites / ctx.n_sites,
        1000.0 * n_sites / ctx.volume,
        n_li / n_sites if n_sites else 0.0,
    ]


def _li_li(ctx: StructureContext) -> list[float]:
    """Nearest Li–Li distance per Li site and occupancy-weighted Li counts within 3 and 4 A."""
    pair = (ctx.li[ctx.center] > 0) & (ctx.li[ctx.neighbor] > 0)
    c, d = ctx.center[pair], ctx.dist[pair]
    w = ctx.li[ctx.neighbor[pair]]
    nn = np.minimum(group_min(c, d, ctx.n_sites), CUTOFF)  # censored: >= CUTOFF reads CUTOFF
    mean, std, lo, _ = wstats(nn, ctx.li)
    cn3 = group_sum(c, w * (d <= 3.0), ctx.n_sites)
    cn4 = group_sum(c, w * (d <= 4.0), ctx.n_sites)
    return [mean, lo, std, wstats(cn3, ctx.li)[0], wstats(cn4, ctx.li)[0]]


def _li_anion(ctx: StructureContext) -> list[float]:
    """Li–anion nearest distances, Li ECoN, Li free radius and Li bond-valence sums."""
    pair = (ctx.li[ctx.center] > 0) & (ctx.anion[ctx.neighbor] > 0)
    c, d, nb = ctx.center[pair], ctx.dist[pair], ctx.neighbor[pair]
    n = ctx.n_sites
    nn = group_min(c, d, n)
    nn = np.where(np.isfinite(nn), nn, np.nan)
    mean, std, lo, _ = wstats(nn, ctx.li)
    # where every Li site is a cation (not so in Li- intermetallics), the cation ECoN of the
    # structure group holds the Li ECoN: the same pairs, the same floats
    shared = ctx.has_anions and bool((ctx.cation[ctx.li > 0] > 0).all())
    cn = ctx.cation_econ[0] if shared else effective_cn(c, d, ctx.anion[nb], n)[0]
    free = group_min(c, d - ctx.anion_radius[nb], n)
    free = np.where(np.isfinite(free), free, np.nan) - ionic_radius("Li", 1.0)
    bvs = group_sum(c, _bond_valence(ctx, nb, d), n)
    bvs = np.where(np.isfinite(nn), bvs, np.nan)
    cn_mean, cn_std, _, _ = wstats(cn, ctx.li)
    free_mean, _, free_min, _ = wstats(free, ctx.li)
    bvs_mean, bvs_std, _, _ = wstats(bvs, ctx.li)
    bvs_dev = wstats(np.abs(bvs - 1.0), ctx.li)[0]
    return [mean, lo, std, cn_mean, cn_std, free_mean, free_min, bvs_mean, bvs_std, bvs_dev]


def _bond_valence(ctx: StructureContext, nb: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Li bond valence to each neighbour, summed over the neighbour's anion occupancies."""
    out = np.zeros(len(d))
    for j, el in enumerate(ctx.elements):
        if el in ctx.oxidation.anions:
            out += ctx.occ[nb, j] * np.exp((_r0("Li", el) - d) / BV_B)
    return out


@lru_cache(maxsize=256)
def _r0(cation: str, anion: str) -> float:
    """Brese–O'Keeffe bond-valence parameter R0 from the element parameters r and c."""
    pc, pa = BV_PARAMS[Element(cation)], BV_PARAMS.get(Element(anion))
    if pa is None:
        return float(ionic_radius(cation, 1.0) + ionic_radius(anion, -1.0))
    rc, cc, ra, ca = pc["r"], pc["c"], pa["r"], pa["c"]
    return float(rc + ra - rc * ra * (cc**0.5 - ca**0.5) ** 2 / (cc * rc + ca * ra))


def _hops(ctx: StructureContext) -> list[float]:
    """Bottleneck of straight Li–Li hops: distance from each hop midpoint to the nearest
    anion surface (minus r_Li+), best hop per Li site; shortest hop length per Li site."""
    n = ctx.n_sites
    order = np.argsort(ctx.center, kind="stable")
    center, nb, dist, vec = ctx.center[order], ctx.neighbor[order], ctx.dist[order], ctx.vec[order]
    hop = (ctx.li[center] > 0) & (ctx.li[nb] > 0) & (dist <= HOP_CUTOFF)
    an = (ctx.li[center] > 0) & (ctx.anion[nb] > 0)
    if not hop.any() or not an.any():
        return [math.nan] * 4
    an_c, an_vec, an_r = center[an], vec[an], ctx.anion_radius[nb[an]]
    starts = np.searchsorted(an_c, np.arange(n))
    counts = np.bincount(an_c, minlength=n)
    h_c, h_mid = center[hop], vec[hop] / 2.0
    reps = counts[h_c]
    keep = reps > 0
    h_c, h_mid, reps, h_d = h_c[keep], h_mid[keep], reps[keep], dist[hop][keep]
    if len(h_c) == 0:
        return [math.nan] * 4
    hop_id = np.repeat(np.arange(len(h_c)), reps)
    offsets = np.concatenate([[0], np.cumsum(reps)[:-1]])
    idx = starts[h_c][hop_id] + (np.arange(hop_id.size) - offsets[hop_id])
    # per Cartesian component: three 1-d gathers are several times faster than one of rows,
    # and x*x + y*y + z*z sums in the order of norm's sum of squares (the same floats)
    x, y, z = (a[idx] - m[hop_id] for a, m in zip(an_vec.T.copy(), h_mid.T.copy(), strict=True))
    gap = np.sqrt(x * x + y * y + z * z) - an_r[idx]
    clearance = np.minimum.reduceat(gap, offsets) - ionic_radius("Li", 1.0)
    best = group_max(h_c, clearance, n)
    best = np.where(np.isfinite(best), best, np.nan)
    shortest = group_min(h_c, h_d, n)
    shortest = np.where(np.isfinite(shortest), shortest, np.nan)
    mean, _, lo, hi = wstats(best, ctx.li)
    return [mean, lo, hi, wstats(shortest, ctx.li)[0]]


def _framework(ctx: StructureContext) -> list[float]:
    """Volume per anion, free volume outside anion spheres, and bcc/fcc likeness."""
    n_anion = float(ctx.anion.sum())
    if n_anion <= 0:
        return [math.nan] * 5
    anion_vol = float((ctx.anion * 4.0 / 3.0 * math.pi * ctx.anion_radius**3).sum())
    sub = ctx.anion >= 0.5
    if not sub.any():
        sub = ctx.anion > 0
    scale = (ctx.volume / float(sub.sum())) ** (1.0 / 3.0)
    pair = sub[ctx.center] & sub[ctx.neighbor]
    c, d = ctx.center[pair], ctx.dist[pair] / scale
    shells = np.full((ctx.n_sites, N_SHELL), CUTOFF / scale)
    order = np.lexsort((d, c))
    c, d = c[order], d[order]
    rank = np.arange(len(c)) - np.searchsorted(c, c)
    first = rank < N_SHELL
    shells[c[first], rank[first]] = d[first]
    shells = shells[sub]
    bcc = np.sqrt(((shells - BCC_SHELL) ** 2).mean(axis=1)).mean()
    fcc = np.sqrt(((shells - FCC_SHELL) ** 2).mean(axis=1)).mean()
    return [
        ctx.volume / n_anion,
        1.0 - anion_vol / ctx.volume,
        float(shells[:, 0].mean()),
        float(bcc),
        float(fcc),
    ]
