"""Structure descriptors from atomic positions: density, packing, disorder, coordination.

All site quantities are occupancy-weighted (see ``miscreen.featurize.context``): a site half
filled with Li counts as half a Li; the vacancy fraction and configurational entropy
describe the disorder itself. Coordination numbers are Hoppe's effective coordination
numbers (ECoN) of cations by anions and anions by cations, computed from the one shared
neighbour list; where a structure has no anion (intermetallics) every atom counts.
"""

from __future__ import annotations

import math

import numpy as np

from miscreen.featurize.base import Entry, Featurizer, wstats
from miscreen.featurize.context import StructureContext, effective_cn, group_min

HOPPE = (
    "R. Hoppe, Effective coordination numbers (ECoN) and mean fictive ionic radii (MEFIR), "
    "Z. Kristallogr. 150 (1979) 23-52"
)


class StructureFeaturizer(Featurizer):
    """Density, packing, disorder and coordination statistics of one structure."""

    name = "struct"
    version = "2"
    needs_structure = True

    def feature_labels(self) -> list[str]:
        names = [
            "density",
            "packing_fraction",
            "n_sites",
            "frac_disordered_sites",
            "vacancy_fraction",
            "config_entropy",
            "nn_dist_mean",
            "nn_dist_min",
            "cation_cn_mean",
            "cation_cn_std",
            "cation_cn_min",
            "cation_cn_max",
            "anion_cn_mean",
            "anion_cn_std",
            "bond_length_mean",
            "bond_strain_mean",
            "bond_distortion_mean",
        ]
        return [f"{self.name}:{n}" for n in names]

    def featurize(self, entry: Entry) -> list[float]:
        ctx = entry.context
        if ctx is None:
            raise ValueError("structure featurizer needs a structure")
        return [*_disorder(ctx), *_nearest(ctx), *_coordination(ctx)]

    def citations(self) -> list[str]:
        return [HOPPE]


def _disorder(ctx: StructureContext) -> list[float]:
    """Density, ionic packing fraction, site count and occupancy disorder measures."""
    atom_volume = 4.0 / 3.0 * math.pi * ctx.site_radius**3
    packing = float((ctx.site_total * atom_volume).sum() / ctx.volume)
    mixed = ((ctx.occ > 0).sum(axis=1) > 1) | (ctx.site_total < 0.99)
    vac = np.clip(1.0 - ctx.site_total, 0.0, 1.0)
    parts = np.concatenate([ctx.occ, vac[:, None]], axis=1)
    entropy = -np.sum(np.where(parts > 0, parts * np.log(np.where(parts > 0, parts, 1.0)), 0.0), 1)
    return [
        ctx.density,
        packing,
        float(ctx.n_sites),
        float(mixed.mean()),
        float(vac.mean()),
        float(entropy.mean()),
    ]


def _nearest(ctx: StructureContext) -> list[float]:
    """Occupancy-weighted mean and overall minimum nearest-neighbour distance."""
    nn = group_min(ctx.center, ctx.dist, ctx.n_sites)
    nn = np.where(np.isfinite(nn), nn, np.nan)
    mean = wstats(nn, ctx.site_total)[0]
    return [mean, float(np.nanmin(nn)) if np.isfinite(nn).any() else math.nan]


def _coordination(ctx: StructureContext) -> list[float]:
    """Cation-by-anion and anion-by-cation ECoN statistics and bond-length measures."""
    has_anions = ctx.has_anions
    cat_w = ctx.cation if has_anions else ctx.site_total
    an_w = ctx.anion if has_anions else ctx.site_total
    cn, lav = ctx.cation_econ
    acn, _ = effective_cn(
        ctx.center, ctx.dist, cat_w[ctx.neighbor] * (an_w[ctx.center] > 0), ctx.n_sites
    )
    c_mean, c_std, c_min, c_max = wstats(cn, cat_w)
    a_mean, a_std, _, _ = wstats(acn, an_w)
    r_anion = float(np.average(ctx.anion_radius, weights=ctx.anion)) if has_anions else 0.0
    cat_r = ctx.site_radius
    ideal = cat_r + (r_anion if has_anions else cat_r)
    strain = np.divide(lav, ideal, out=np.full(ctx.n_sites, np.nan), where=ideal > 0)
    distortion = _distortion(ctx, lav, an_w, cat_w)
    return [
        c_mean,
        c_std,
        c_min,
        c_max,
        a_mean,
        a_std,
        wstats(lav, cat_w)[0],
        wstats(strain, cat_w)[0],
        wstats(distortion, cat_w)[0],
    ]


def _distortion(
    ctx: StructureContext, lav: np.ndarray, an_w: np.ndarray, cat_w: np.ndarray
) -> np.ndarray:
    """Relative spread of bond lengths in each cation's first shell (ECoN weights)."""
    c, d = ctx.center, ctx.dist
    ok = (cat_w[c] > 0) & (an_w[ctx.neighbor] > 0) & np.isfinite(lav[c])
    c, d = c[ok], d[ok]
    w = an_w[ctx.neighbor[ok]] * np.exp(1.0 - (d / lav[c]) ** 6)
    n = ctx.n_sites
    den = np.bincount(c, weights=w, minlength=n)
    var = np.bincount(c, weights=w * (d - lav[c]) ** 2, minlength=n)
    rel = np.sqrt(np.divide(var, den, out=np.full(n, np.nan), where=den > 0)) / lav
    return rel
