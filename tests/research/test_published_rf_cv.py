"""The RF-beside-miscreen study's folds: DOI and formula groups keep both apart, and the
overlap it reports counts what a training fold shares with its held-out rows."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from miscreen import schema as S
from tests.research import import_benchmark


def data() -> SimpleNamespace:
    """Six rows: Li3PS4 and Li9P3S12 are one reduced formula, so papers a and b link."""
    records = pd.DataFrame(
        {S.COMPOSITION: ["Li3PS4", "Li6PS5Cl", "Li9P3S12", "Li2S", "Li2S", "Li3N"]}
    )
    doi = np.array(["a", "b", "b", "c", "d", "e"])
    chemsys = np.array(["Li-P-S", "Cl-Li-P-S", "Li-P-S", "Li-S", "Li-S", "Li-N"])
    return SimpleNamespace(records=records, doi=doi, chemsys=chemsys)


def test_doi_formula_groups_join_papers_through_a_shared_formula():
    study = import_benchmark("research.published_rf_cv")
    g = study.doi_formula_groups(data())
    assert g[0] == g[1] == g[2]  # a ~ b through the formula, b's two rows through the DOI
    assert g[3] == g[4] != g[0]  # Li2S in papers c and d
    assert len(set(g)) == 3


def test_overlap_counts_shared_systems_and_formulas():
    study = import_benchmark("research.published_rf_cv")
    rows = np.arange(6)
    # hold out rows 2 and 4: Li9P3S12 (its formula and system in training) and Li2S (same)
    split = [(np.setdiff1d(rows, [2, 4]), np.array([2, 4]))]
    assert study.overlap(data(), split) == {"chemsys_in_training": 1.0, "formula_in_training": 1.0}
    # hold out Li3N alone: nothing shared
    split = [(rows[:5], np.array([5]))]
    assert study.overlap(data(), split) == {"chemsys_in_training": 0.0, "formula_in_training": 0.0}
