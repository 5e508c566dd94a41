"""Cross-validation groups that look like new chemistry, for honest model choices.

- ``doi``: a publication's rows stay together (``fit.doi_groups``);
- ``chemsys``: a chemical system (the set of elements) stays together;
- ``cluster``: leave-cluster-out, k-means clusters of standardised element fractions (the
  LOCO-CV of Meredig et al., Mol. Syst. Des. Eng. 3, 819 (2018)).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pymatgen.core import Composition
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler

from miscreen import schema as S

N_CLUSTERS = 5


def chemsys_groups(compositions: pd.Series) -> np.ndarray:
    """The chemical system of each composition, e.g. ``Ge-Li-P-S``."""
    return np.array(
        ["-".join(sorted(el.symbol for el in Composition(str(c)).elements)) for c in compositions]
    )


def element_fractions(compositions: pd.Series) -> pd.DataFrame:
    """Atomic fraction of every element (columns) in every composition (rows)."""
    rows = [Composition(str(c)).fractional_composition.get_el_amt_dict() for c in compositions]
    return pd.DataFrame(rows).fillna(0.0)


def cluster_groups(compositions: pd.Series, k: int = N_CLUSTERS, seed: int = 0) -> np.ndarray:
    """k-means cluster of each composition in standardised element-fraction space."""
    X = StandardScaler().fit_transform(element_fractions(compositions).to_numpy())
    return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(X)


def new_chemistry_groups(labelled: pd.DataFrame, seed: int = 0) -> dict[str, np.ndarray]:
    """The three grouping schemes for the labelled rows (see the module docstring)."""
    from miscreen.train.fit import doi_groups

    comps = labelled[S.COMPOSITION]
    return {
        "doi": doi_groups(labelled.set_index(S.ID)),
        "chemsys": chemsys_groups(comps),
        "cluster": cluster_groups(comps, seed=seed),
    }
