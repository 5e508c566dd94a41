"""Element-embedding features: weighted statistics over the composition, analogues close."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Composition

from benchmarks.research.embeddings import (
    MAT2VEC_COMPONENTS,
    Mat2VecEmbeddingFeaturizer,
    MegnetEmbeddingFeaturizer,
    mat2vec_table,
    megnet_table,
)
from miscreen.featurize.base import Entry

FEATURIZERS = [MegnetEmbeddingFeaturizer(), Mat2VecEmbeddingFeaturizer()]


def values(f, formula: str) -> np.ndarray:
    return np.asarray(f.featurize(Entry(Composition(formula))))


@pytest.mark.parametrize("f", FEATURIZERS, ids=lambda f: f.name)
def test_labels_match_values_and_carry_the_group_prefix(f) -> None:
    labels = f.feature_labels()
    v = values(f, "Li6.4La3Zr1.4Ta0.6O12")  # disordered: fractional amounts
    assert len(v) == len(labels) == len(set(labels))
    assert all(label.startswith(f"{f.name}:") for label in labels)
    assert np.isfinite(v).all()
    assert f.citations()


def test_megnet_mean_and_spread_are_fraction_weighted() -> None:
    f = MegnetEmbeddingFeaturizer()
    li, cl = megnet_table()["Li"], megnet_table()["Cl"]
    v = values(f, "Li3Cl")
    mean, std = v[:16], v[16:]
    np.testing.assert_allclose(mean, 0.75 * li + 0.25 * cl)
    np.testing.assert_allclose(std, np.sqrt(0.75 * 0.25) * np.abs(li - cl))
    single = values(f, "Li")
    np.testing.assert_allclose(single[:16], li)
    np.testing.assert_allclose(single[16:], 0.0, atol=1e-12)


def test_mat2vec_is_a_fixed_projection_of_the_element_table() -> None:
    table = mat2vec_table()
    assert len(table["Li"]) == MAT2VEC_COMPONENTS
    # principal components of the element table: centred, decreasing variance
    m = np.array(list(table.values()))
    np.testing.assert_allclose(m.mean(axis=0), 0.0, atol=1e-9)
    var = m.var(axis=0)
    assert (np.diff(var) <= 1e-12).all()


@pytest.mark.parametrize("f", FEATURIZERS, ids=lambda f: f.name)
def test_chemical_analogues_sit_closer_than_other_chemistry(f) -> None:
    """The reason for the group: Si for Ge keeps LGPS close, O for S moves it far."""
    lgps = values(f, "Li10GeP2S12")
    lsips = values(f, "Li10SiP2S12")
    oxide = values(f, "Li10GeP2O12")
    assert np.linalg.norm(lgps - lsips) < np.linalg.norm(lgps - oxide)
