"""The ``ion`` group: anion chemistry and Li–anion ionicity.

Composition only, so composition-only rows get it too: anion electronegativity, charge,
radius and mixing, Li–anion electronegativity difference and ionic character, Li per anion,
Li's share of the cation charge and the mean charge of the other cations (oxidation states
from ``featurize.oxidation``). Documented NaNs: the anion features when the material has
no anion (e.g. an alloy).
"""

from __future__ import annotations

import math

import numpy as np

from miscreen.featurize.base import Entry, Featurizer, electronegativity
from miscreen.featurize.context import ionic_radius


class IonicFeaturizer(Featurizer):
    """Anion chemistry and Li–anion ionicity from the composition and oxidation states."""

    name = "ion"
    version = "2"
    needs_structure = False

    def feature_labels(self) -> list[str]:
        names = [
            "anion_x_mean",
            "li_anion_dx",
            "ionic_character",
            "anion_charge_mean",
            "anion_radius_mean",
            "n_anion_species",
            "anion_mix_entropy",
            "li_per_anion",
            "li_charge_fraction",
            "cation_charge_mean",
        ]
        return [f"{self.name}:{n}" for n in names]

    def featurize(self, entry: Entry) -> list[float]:
        ox = entry.oxidation
        amounts = {el.symbol: float(a) for el, a in entry.composition.element_composition.items()}
        anions = [el for el in amounts if el in ox.anions]
        li = amounts.get("Li", 0.0)
        cations = [el for el in amounts if el not in ox.anions]
        pos = sum(amounts[el] * max(ox.states.get(el, 0.0), 0.0) for el in cations)
        others = [el for el in cations if el != "Li"]
        n_other = sum(amounts[el] for el in others)
        cat_q = (
            sum(amounts[el] * ox.states.get(el, 0.0) for el in others) / n_other if n_other else 0.0
        )
        tail = [li / pos if pos > 0 else math.nan, cat_q]
        if not anions:
            return [math.nan] * 5 + [0.0, 0.0, math.nan, *tail]
        w = np.array([amounts[el] for el in anions])
        frac = w / w.sum()
        x = float(frac @ [electronegativity(el) for el in anions])
        dx = x - electronegativity("Li")
        return [
            x,
            dx,
            1.0 - math.exp(-(dx**2) / 4.0),
            float(frac @ [ox.states[el] for el in anions]),
            float(frac @ [ionic_radius(el, ox.states[el]) for el in anions]),
            float(len(anions)),
            float(-(frac * np.log(frac)).sum()),
            li / float(w.sum()),
            *tail,
        ]
