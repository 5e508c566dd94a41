"""Oxidation-state-aware composition descriptors (composition only, no positions).

The oxidation states are guessed from the composition alone (``featurize.oxidation.guess``:
pymatgen's guess within its budget, else the electronegativity fallback), so the
combinatorial guesser never runs on a large disordered formula, a row's features are the
same whether or not a structure came with it (a composition model must not see a difference
between a CIF row and the same formula typed by a user), and the group never builds a
structure or its neighbour list. From them, the statistics
that matminer's ``OxidationStates``, ``ElectronegativityDiff`` (Deml et al. 2016) and
``IonProperty`` (Ward et al. 2016) compute, vectorised here, plus what the framework cations
look like to a Li ion: their Shannon radii, charges and field strengths (z / r^2, the
polarising power that binds the anions and so the Li). ``ion:*`` already holds the anion
side (electronegativity, charge, radius, mixing) and the Li share of the charge; none of
those is repeated.

Statistics are atom-fraction weighted. ``oxi:guess_balanced`` is 1 when the states are given
or charge-balanced by pymatgen, 0 for the fallback (a sign of an unusual or off-stoichiometric
formula). Documented NaNs: the EN-difference statistics when there is no anion or no cation,
the framework-cation statistics when Li is the only cation.
"""

from __future__ import annotations

import math

import numpy as np

from miscreen.featurize.base import Entry, Featurizer, electronegativity, wstats
from miscreen.featurize.context import ionic_radius
from miscreen.featurize.oxidation import guess

DEML = (
    "A. M. Deml, R. O'Hayre, C. Wolverton and V. Stevanovic, Predicting density functional "
    "theory total energies and enthalpies of formation of metal-nonmetal compounds by linear "
    "regression, Phys. Rev. B 93 (2016) 085142"
)
WARD = (
    "L. Ward, A. Agrawal, A. Choudhary and C. Wolverton, A general-purpose machine learning "
    "framework for predicting properties of inorganic materials, npj Comput. Mater. 2 (2016) "
    "16028"
)
NAMES = (
    "oxi_min",
    "oxi_max",
    "oxi_range",
    "oxi_std",
    "en_diff_min",
    "en_diff_max",
    "en_diff_range",
    "en_diff_mean",
    "en_diff_std",
    "ionic_char_max",
    "ionic_char_mean",
    "framework_charge_mean",
    "framework_charge_std",
    "framework_radius_mean",
    "framework_radius_std",
    "framework_radius_min",
    "framework_radius_max",
    "field_strength_mean",
    "field_strength_max",
    "guess_balanced",
)


class OxidationCompositionFeaturizer(Featurizer):
    """Oxidation-state, electronegativity-difference, ionicity and framework-cation
    statistics from the composition and its budgeted oxidation-state guess."""

    name = "oxi"
    version = "2"
    needs_structure = False

    def feature_labels(self) -> list[str]:
        return [f"{self.name}:{n}" for n in NAMES]

    def featurize(self, entry: Entry) -> list[float]:
        ox = guess(entry.composition)
        amounts = entry.composition.element_composition.get_el_amt_dict()
        els = list(amounts)
        if not els:
            raise ValueError("composition has no atoms")
        w = np.array([amounts[e] for e in els], dtype=float)
        w = w / w.sum()
        q = np.array([ox.states.get(e, 0.0) for e in els], dtype=float)
        x = np.array([electronegativity(e) for e in els])
        _mean_q, std_q, lo_q, hi_q = wstats(q, w)
        return [
            lo_q,
            hi_q,
            hi_q - lo_q,
            std_q,
            *_en_difference(w, q, x),
            *_ionic_character(w, x),
            *_framework(els, w, q),
            1.0 if ox.method in ("given", "pymatgen") else 0.0,
        ]

    def citations(self) -> list[str]:
        return [DEML, WARD]


def _en_difference(w: np.ndarray, q: np.ndarray, x: np.ndarray) -> list[float]:
    """Mean anion electronegativity minus each cation's: min, max, range, mean, std."""
    an, cat = q < 0, q > 0
    if not an.any() or not cat.any():
        return [math.nan] * 5
    anion_x = float(np.average(x[an], weights=w[an]))
    mean, std, lo, hi = wstats(anion_x - x[cat], w[cat])
    return [lo, hi, hi - lo, mean, std]


def _ionic_character(w: np.ndarray, x: np.ndarray) -> list[float]:
    """Pauling ionic character 1 - exp(-(dX)^2 / 4) over element pairs: max and the
    fraction-weighted sum (IonProperty's definitions); 0 for a single element."""
    if len(x) < 2:
        return [0.0, 0.0]
    i, j = np.triu_indices(len(x), k=1)
    char = 1.0 - np.exp(-0.25 * (x[i] - x[j]) ** 2)
    return [float(char.max()), float((w[i] * w[j] * char).sum())]


def _framework(els: list[str], w: np.ndarray, q: np.ndarray) -> list[float]:
    """Charge, Shannon radius and field strength z/r^2 of the cations other than Li."""
    idx = [k for k, e in enumerate(els) if e != "Li" and q[k] > 0]
    if not idx:
        return [math.nan] * 8
    ww, qq = w[idx], q[idx]
    r = np.array([ionic_radius(els[k], q[k]) for k in idx])
    charge_mean, charge_std, _, _ = wstats(qq, ww)
    r_mean, r_std, r_lo, r_hi = wstats(r, ww)
    field = qq / r**2
    field_mean, _, _, field_hi = wstats(field, ww)
    return [charge_mean, charge_std, r_mean, r_std, r_lo, r_hi, field_mean, field_hi]
