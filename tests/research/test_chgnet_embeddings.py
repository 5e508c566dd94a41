"""CHGNet's element embedding as composition features: the right rows, fraction-weighted."""

from __future__ import annotations

import numpy as np
import torch
from pymatgen.core import Composition

from benchmarks.research.embeddings import (
    CHGNET_EL_DIMS,
    ChgnetEmbeddingFeaturizer,
    chgnet_table,
)
from miscreen.featurize.base import Entry
from miscreen.featurize.pretrained import model


def weight() -> np.ndarray:
    return model().atom_embedding.embedding.weight.detach().cpu().numpy().astype(float)


def values(formula: str) -> np.ndarray:
    return np.asarray(ChgnetEmbeddingFeaturizer().featurize(Entry(Composition(formula))))


def test_table_rows_are_chgnets_embedding_at_z_minus_one() -> None:
    table, w = chgnet_table(), weight()
    assert w.shape == (94, CHGNET_EL_DIMS)
    assert len(table) == 94 and "Pu" in table and "Am" not in table
    for symbol, z in (("H", 1), ("Li", 3), ("S", 16), ("La", 57), ("Pu", 94)):
        np.testing.assert_array_equal(table[symbol], w[z - 1])
    # the embedding CHGNet's forward pass gives a Li atom (it indexes atomic number - 1)
    with torch.no_grad():
        li = model().atom_embedding(torch.tensor([3]) - 1).numpy()[0]
    np.testing.assert_allclose(table["Li"], li)


def test_labels_match_values_and_carry_the_group_prefix() -> None:
    f = ChgnetEmbeddingFeaturizer()
    labels = f.feature_labels()
    v = values("Li6.4La3Zr1.4Ta0.6O12")  # disordered: fractional amounts
    assert len(v) == len(labels) == len(set(labels)) == 2 * CHGNET_EL_DIMS
    assert all(label.startswith("chgnet_el:") for label in labels)
    assert np.isfinite(v).all()
    assert "Nat. Mach. Intell. 5" in f.citations()[0]
    assert not f.needs_structure


def test_mean_and_spread_are_fraction_weighted() -> None:
    w = weight()
    li, cl = w[3 - 1], w[17 - 1]
    v = values("Li3Cl")
    mean, std = v[:CHGNET_EL_DIMS], v[CHGNET_EL_DIMS:]
    np.testing.assert_allclose(mean, 0.75 * li + 0.25 * cl)
    np.testing.assert_allclose(std, np.sqrt(0.75 * 0.25) * np.abs(li - cl))
    single = values("Li")
    np.testing.assert_allclose(single[:CHGNET_EL_DIMS], li)
    np.testing.assert_allclose(single[CHGNET_EL_DIMS:], 0.0, atol=1e-12)


def test_an_element_beyond_the_table_gets_the_table_mean() -> None:
    w = weight()
    v = values("LiAm")  # americium, Z = 95, is past CHGNet's 94 rows
    np.testing.assert_allclose(v[:CHGNET_EL_DIMS], 0.5 * w[3 - 1] + 0.5 * w.mean(axis=0))


def test_chemical_analogues_sit_closer_than_other_chemistry() -> None:
    """Si for Ge keeps LGPS closer than O for S does."""
    lgps, lsips, oxide = values("Li10GeP2S12"), values("Li10SiP2S12"), values("Li10GeP2O12")
    assert np.linalg.norm(lgps - lsips) < np.linalg.norm(lgps - oxide)
