"""Cross-validation groups that look like new chemistry, for honest model choices.

- ``doi``: a publication's rows stay together (``fit.doi_groups``);
- ``chemsys``: a chemical system (the set of elements) stays together;
- ``cluster``: leave-cluster-out, k-means clusters of standardised element fractions (the
  LOCO-CV of Meredig et al., Mol. Syst. Des. Eng. 3, 819 (2018)).

:func:`chemical_system` is the one definition of a chemical system in miscreen (the
suggest stage's one pick per system uses it too).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import numpy as np
import pandas as pd
from pymatgen.core import Composition
from sklearn.cluster import KMeans
from sklearn.model_selection import GroupKFold, LeaveOneGroupOut
from sklearn.preprocessing import StandardScaler

from miscreen.fetch.parsing import parse_composition
from miscreen.schema import COMPOSITION, ID

N_CLUSTERS = 5
N_FOLDS = 5

Folds = list[tuple[np.ndarray, np.ndarray]]  # (train positions, test positions) per fold


@lru_cache(maxsize=65536)
def chemical_system(composition: str) -> str:
    """The chemical system of a formula, its elements sorted: ``Ge-Li-P-S``; a
    ``ValueError`` naming the formula when it does not parse."""
    return parse_composition(composition).chemical_system


def chemsys_groups(compositions: Iterable[object]) -> np.ndarray:
    """The chemical system of each composition, e.g. ``Ge-Li-P-S``."""
    return np.array([chemical_system(str(c)) for c in compositions])


def element_fractions(compositions: Iterable[object]) -> pd.DataFrame:
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

    comps = labelled[COMPOSITION]
    return {
        "doi": doi_groups(labelled.set_index(ID)),
        "chemsys": chemsys_groups(comps),
        "cluster": cluster_groups(comps, seed=seed),
    }


def new_chemistry_folds(
    labelled: pd.DataFrame, seed: int = 0, n_folds: int = N_FOLDS, shuffle: bool = False
) -> dict[str, Folds]:
    """The three schemes as folds over the rows' positions, every row tested once:
    ``GroupKFold(n_folds)`` by DOI and by chemical system (groups dealt to the folds in a
    random order seeded by ``seed`` when ``shuffle``), and each k-means cluster one test
    fold."""
    groups = new_chemistry_groups(labelled, seed)
    rows = np.arange(len(labelled))
    kfold = GroupKFold(n_folds, shuffle=shuffle, random_state=seed if shuffle else None)
    return {
        "doi": list(kfold.split(rows, groups=groups["doi"])),
        "chemsys": list(kfold.split(rows, groups=groups["chemsys"])),
        "cluster": list(LeaveOneGroupOut().split(rows, groups=groups["cluster"])),
    }
