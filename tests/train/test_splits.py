"""New-chemistry CV: one chemical-system definition, and folds that keep groups whole."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from miscreen.schema import COMPOSITION, DOI, ID
from miscreen.suggest import selection
from miscreen.train import splits

FORMULAS = [
    "Li10GeP2S12",
    "Li3PS4",
    "Li7P3S11",
    "Li6PS5Cl",
    "Li6PS5Br",
    "Li7La3Zr2O12",
    "Li6.4La3Zr1.4Ta0.6O12",
    "Li3InCl6",
    "Li3YCl6",
    "Li3YBr6",
    "LiTi2(PO4)3",
    "Li1.3Al0.3Ti1.7(PO4)3",
    "Li0.33La0.56TiO3",
    "Li3N",
    "LiBH4",
    "Li2S",
]


def labelled() -> pd.DataFrame:
    """Two rows per formula from a pair of publications each, so groups have several rows."""
    rows = []
    for i, formula in enumerate(FORMULAS):
        for j in range(2):
            rows.append({ID: f"r{i}-{j}", COMPOSITION: formula, DOI: f"10.1/paper{(i + j) % 9}"})
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("formula", "system"),
    [
        ("Li10GeP2S12", "Ge-Li-P-S"),
        ("Li6.4La3Zr1.4Ta0.6O12", "La-Li-O-Ta-Zr"),  # disordered: fractional amounts
        ("LiTi2(PO4)3", "Li-O-P-Ti"),
        ("S4P Li3", "Li-P-S"),  # element order and spacing do not matter
    ],
)
def test_chemical_system_sorts_the_elements(formula: str, system: str) -> None:
    assert splits.chemical_system(formula) == system


def test_chemical_system_names_a_formula_it_cannot_read() -> None:
    with pytest.raises(ValueError, match="Xq2Li"):
        splits.chemical_system("Xq2Li")


def test_suggest_and_the_cv_groups_share_one_chemical_system() -> None:
    assert selection.chemical_system is splits.chemical_system
    comps = pd.Series(FORMULAS)
    assert list(splits.chemsys_groups(comps)) == selection.chemical_systems(comps)


@pytest.mark.parametrize("shuffle", [False, True])
def test_new_chemistry_folds_test_every_row_once_and_keep_groups_whole(shuffle: bool) -> None:
    table = labelled()
    groups = splits.new_chemistry_groups(table, seed=1)
    folds = splits.new_chemistry_folds(table, seed=1, n_folds=4, shuffle=shuffle)
    assert sorted(folds) == ["chemsys", "cluster", "doi"]
    assert len(folds["doi"]) == len(folds["chemsys"]) == 4
    assert len(folds["cluster"]) == len(set(groups["cluster"])) == splits.N_CLUSTERS
    for scheme, fold_list in folds.items():
        tested = np.concatenate([test for _, test in fold_list])
        assert sorted(tested) == list(range(len(table))), scheme
        for train, test in fold_list:
            assert not set(train) & set(test)
            assert len(train) + len(test) == len(table)
            assert not set(groups[scheme][train]) & set(groups[scheme][test]), scheme


def test_shuffled_folds_follow_the_seed() -> None:
    table = labelled()

    def doi_tests(seed: int, shuffle: bool) -> list[list[int]]:
        folds = splits.new_chemistry_folds(table, seed=seed, n_folds=4, shuffle=shuffle)
        return [sorted(test.tolist()) for _, test in folds["doi"]]

    assert doi_tests(0, True) == doi_tests(0, True)
    assert any(doi_tests(0, True) != doi_tests(s, True) for s in range(1, 6))
    assert doi_tests(0, False) == doi_tests(3, False)  # unshuffled: the seed moves clusters only
