"""A prior for fast Li-ion conduction that needs no conductivity label, and the cold start
that uses it.

A campaign's model learns only from what was measured. From a few poor conductors (mostly
oxides) it cannot know that soft-anion frameworks conduct better, so it rarely tries them.
Physics knows this without a label:

- ``anion_polarizability``: the amount-weighted mean static polarizability (A^3, the CRC
  atomic values Magpie ships) of the composition's anion elements (N, O, F, S, Cl, Se, Br,
  Te, I). A more polarizable anion framework screens the moving Li+ and softens the lattice,
  which lowers migration barriers: sulfides, selenides and iodides conduct better than
  oxides and fluorides (Bachman et al., Chem. Rev. 116, 140 (2016); Kraft et al., J. Am.
  Chem. Soc. 139, 10909 (2017));
- ``li_fraction``: Li atoms per atom, the carrier density;
- ``barrier``: a bond-valence (BVSE) 3-D Li migration barrier in eV, where a structure gave
  one (lower is faster).

:func:`prior_score` is the mean of each known component's percentile rank over the pool,
oriented so that higher means faster, with equal weights (nothing fitted). The cold start
(:func:`cold_start`) ranks the pool by this score until a fast conductor has been measured:
before that, the model has never seen one and cannot point to one.

After the cold start the prior still weighs in (:func:`weight_by_prior`): the scores of
``mli`` and ``ei`` are multiplied by it, so a row the model rates as likely to beat the
best measured value but that physics rates poorly waits behind one both rate well. In the
simulated OBELiX campaigns (``benchmarks/research/sequential_variants.py``, issue 23) the
model alone kept working through the argyrodites (just under the top 5 %) and then the
oxides, because a forest trained on 15-40 rows predicts the LGPS family about -4.2 with a
spread of about 2 decades, no better than the oxides; with the weighting, ``mli`` needs
on average 53 measurements instead of 62 to find 5 of the top 5 % (40 seeds; 56 instead of
72 on half A of the rows, 40 instead of 53 on half B). Paired by seed it wins clearly on
both halves (Wilcoxon p = 0.003 and 1e-5) but not on all rows (19 seeds better, 17 worse,
p = 0.15), where it mostly removes the long campaigns. ``physics_prior=False`` in
:func:`~miscreen.suggest.selection.suggest_batch` (``--no-physics-prior``) switches off
both the cold start and the weighting.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache

import numpy as np
import pandas as pd
from pymatgen.core import Composition, Element
from scipy.stats import rankdata

ANIONS = ("N", "O", "F", "S", "Cl", "Se", "Br", "Te", "I")
POLARIZABILITY = "anion_polarizability"
LI_FRACTION = "li_fraction"
BARRIER = "barrier"
COMPONENTS = (POLARIZABILITY, LI_FRACTION, BARRIER)
COLD_START_LOG10 = -3.0  # a fast conductor, 1 mS/cm: the cold start lasts until one is measured
# acquisitions whose scores are >= 0 and scale (a probability, an expected gain): weighted
PRIOR_WEIGHTED = frozenset({"mli", "ei"})
# +1: a higher value means faster conduction; -1: a lower one does
ORIENTATION = {POLARIZABILITY: 1.0, LI_FRACTION: 1.0, BARRIER: -1.0}


@cache
def polarizability(symbol: str) -> float:
    """Static dipole polarizability of an element's atom (A^3; CRC values shipped with
    Magpie's element data in matminer)."""
    from matminer.utils.data import MagpieData

    return float(MagpieData().get_elemental_property(Element(symbol), "Polarizability"))


def composition_components(composition: str) -> tuple[float, float]:
    """(anion polarizability, Li fraction) of one composition; the polarizability is NaN
    when the composition holds none of :data:`ANIONS`."""
    amounts = Composition(str(composition)).get_el_amt_dict()
    total = sum(amounts.values())
    if total <= 0:
        raise ValueError(f"composition {composition!r} holds no atoms")
    anions = {el: n for el, n in amounts.items() if el in ANIONS}
    n_anion = sum(anions.values())
    pol = (
        sum(n * polarizability(el) for el, n in anions.items()) / n_anion
        if n_anion > 0
        else float("nan")
    )
    return pol, amounts.get("Li", 0.0) / total


def prior_components(
    compositions: Iterable[object], barriers: Sequence[float] | None = None
) -> pd.DataFrame:
    """One row per composition: :data:`COMPONENTS` (``barrier`` NaN where not given)."""
    rows = [composition_components(str(c)) for c in compositions]
    out = pd.DataFrame(rows, columns=[POLARIZABILITY, LI_FRACTION], dtype=float)
    if barriers is None:
        out[BARRIER] = np.nan
    else:
        if len(barriers) != len(out):
            raise ValueError(f"{len(barriers)} barriers for {len(out)} compositions")
        out[BARRIER] = np.asarray(barriers, dtype=float)
    return out


def prior_score(components: pd.DataFrame) -> np.ndarray:
    """Mean percentile rank (0-1, higher: faster) of each row's known components, equal
    weights; a row with no known component scores 0.5. Ranks are over the rows given."""
    missing = [c for c in COMPONENTS if c not in components.columns]
    if missing:
        raise ValueError(f"prior components lack column(s) {missing}")
    ranks = []
    for name in COMPONENTS:
        values = components[name].to_numpy(dtype=float) * ORIENTATION[name]
        known = np.isfinite(values)
        r = np.full(len(values), np.nan)
        if known.sum() > 1:
            r[known] = (rankdata(values[known]) - 1) / (known.sum() - 1)
        elif known.any():
            r[known] = 0.5
        ranks.append(r)
    stacked = np.vstack(ranks)
    known = np.isfinite(stacked)
    counts = known.sum(axis=0)
    sums = np.where(known, stacked, 0.0).sum(axis=0)
    return np.where(counts > 0, sums / np.maximum(counts, 1), 0.5)


def cold_start(measured: np.ndarray, fast_threshold: float) -> bool:
    """True while no measured value reaches ``fast_threshold`` (log10 S/cm)."""
    measured = np.asarray(measured, dtype=float)
    return not bool((measured >= float(fast_threshold)).any())


def weight_by_prior(acquisition: str, values: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """The acquisition's scores times the prior score, for :data:`PRIOR_WEIGHTED`
    functions (a probability of improvement or an expected gain times the prior's belief,
    0-1, that the row conducts fast); the scores of any other function unchanged."""
    values = np.asarray(values, dtype=float)
    prior = np.asarray(prior, dtype=float)
    if values.shape != prior.shape:
        raise ValueError(f"{values.shape} scores for {prior.shape} prior values")
    if acquisition not in PRIOR_WEIGHTED:
        return values.copy()
    if np.any(values < 0) or np.any(~np.isfinite(prior)) or np.any(prior < 0):
        raise ValueError("prior weighting needs scores >= 0 and finite prior values >= 0")
    return values * prior
