"""Anion-framework descriptors beyond those of ``li`` (needs positions).

``li`` already holds the framework's volume per anion, its free volume and its likeness to
bcc and fcc packing. This group adds the absolute geometry of the anion sublattice and how
the Li polyhedra connect through it:

- nearest anion–anion distance (mean, minimum, coefficient of variation) and the gap between
  neighbouring anion spheres (distance minus both Shannon radii): how open the framework is;
- the anion-by-anion effective coordination number (Hoppe's ECoN);
- for each Li site and its nearest Li neighbour, the number of anions their first shells
  share: 1 corner, 2 edge, 3 or more a face. Face-sharing Li polyhedra (bcc sulfides, LGPS,
  argyrodites) give low migration barriers (Wang et al., Nat. Mater. 14, 1026 (2015)).

Disorder: anion sites are those at least half occupied by anions (all sites with anion
occupancy when none is), weighted by their anion occupancy; Li statistics are weighted by
Li occupancy, as in ``li``. A Li first shell holds every anion-bearing neighbour within
``SHELL_FACTOR`` times that site's nearest Li–anion distance. Documented NaNs: all features
when the structure has no anion site; the sharing features when it has no Li site or no
Li–Li pair within the neighbour-list cutoff (6 A).
"""

from __future__ import annotations

import math

import numpy as np

from miscreen.featurize.base import Entry, Featurizer, wstats
from miscreen.featurize.context import CUTOFF, StructureContext, effective_cn, group_min

SHELL_FACTOR = 1.2
SAME_ATOM_A = 0.1  # two shell vectors closer than this point at the same anion image
WANG = (
    "Y. Wang et al., Design principles for solid-state lithium superionic conductors, "
    "Nat. Mater. 14 (2015) 1026-1031"
)
NAMES = (
    "anion_nn_mean",
    "anion_nn_min",
    "anion_nn_cv",
    "anion_gap_mean",
    "anion_anion_cn",
    "li_shared_anions",
    "li_edge_sharing",
    "li_face_sharing",
)


class AnionFrameworkFeaturizer(Featurizer):
    """Anion-sublattice distances, gaps and coordination, and Li-polyhedron sharing."""

    name = "anion"
    version = "1"
    needs_structure = True

    def feature_labels(self) -> list[str]:
        return [f"{self.name}:{n}" for n in NAMES]

    def featurize(self, entry: Entry) -> list[float]:
        ctx = entry.context
        if ctx is None:
            raise ValueError("anion-framework featurizer needs a structure")
        return [*_sublattice(ctx), *_sharing(ctx)]

    def citations(self) -> list[str]:
        return [WANG]


def anion_sites(ctx: StructureContext) -> np.ndarray:
    """Boolean mask of the anion sublattice (sites at least half occupied by anions)."""
    sub = ctx.anion >= 0.5
    return sub if sub.any() else ctx.anion > 0


def _sublattice(ctx: StructureContext) -> list[float]:
    """Nearest anion–anion distance statistics, the mean gap between anion spheres and the
    anion-by-anion ECoN, weighted by anion occupancy."""
    sub = anion_sites(ctx)
    if not sub.any():
        return [math.nan] * 5
    n = ctx.n_sites
    pair = sub[ctx.center] & sub[ctx.neighbor]
    c, nb, d = ctx.center[pair], ctx.neighbor[pair], ctx.dist[pair]
    weight = np.where(sub, ctx.anion, 0.0)
    nn = np.minimum(group_min(c, d, n), CUTOFF)  # no anion within the cutoff reads CUTOFF
    mean, std, lo, _ = wstats(nn, weight)
    gap = group_min(c, d - ctx.anion_radius[c] - ctx.anion_radius[nb], n)
    gap = np.where(np.isfinite(gap), gap, np.nan)
    cn, _ = effective_cn(c, d, ctx.anion[nb], n)
    return [mean, lo, std / mean if mean > 0 else math.nan, wstats(gap, weight)[0],
            wstats(cn, weight)[0]]  # fmt: skip


def _sharing(ctx: StructureContext) -> list[float]:
    """Anions shared by each Li site's first shell and its nearest Li neighbour's: the
    occupancy-weighted mean count and the fractions sharing an edge (2) or a face (>= 3)."""
    n = ctx.n_sites
    li_pair = (ctx.li[ctx.center] > 0) & (ctx.li[ctx.neighbor] > 0)
    an_pair = (ctx.li[ctx.center] > 0) & (ctx.anion[ctx.neighbor] > 0)
    if not li_pair.any() or not an_pair.any():
        return [math.nan] * 3
    # first shells: anion neighbours within SHELL_FACTOR x the nearest, grouped by Li site
    an_c, an_d, an_v = ctx.center[an_pair], ctx.dist[an_pair], ctx.vec[an_pair]
    first = an_d <= SHELL_FACTOR * group_min(an_c, an_d, n)[an_c]
    an_c, an_v = an_c[first], an_v[first]
    order = np.argsort(an_c, kind="stable")
    an_c, an_v = an_c[order], an_v[order]
    start = np.searchsorted(an_c, np.arange(n + 1))
    # each Li site's shortest hop to another Li site
    h_c, h_nb, h_d, h_v = (
        ctx.center[li_pair], ctx.neighbor[li_pair], ctx.dist[li_pair], ctx.vec[li_pair],
    )  # fmt: skip
    order = np.lexsort((h_d, h_c))
    h_c, h_nb, h_v = h_c[order], h_nb[order], h_v[order]
    nearest = np.flatnonzero(np.r_[True, h_c[1:] != h_c[:-1]])
    shared = np.full(n, np.nan)
    for k in nearest:
        i, j = int(h_c[k]), int(h_nb[k])
        u, w = an_v[start[i] : start[i + 1]], an_v[start[j] : start[j + 1]]
        if len(u) and len(w):
            gaps = np.linalg.norm(u[:, None, :] - (h_v[k] + w)[None, :, :], axis=2)
            shared[i] = float((gaps.min(axis=1) < SAME_ATOM_A).sum())
    weight = np.where(np.isfinite(shared), ctx.li, 0.0)
    if not (weight > 0).any():
        return [math.nan] * 3
    return [
        wstats(shared, weight)[0],
        wstats((shared == 2).astype(float), weight)[0],
        wstats((shared >= 3).astype(float), weight)[0],
    ]
