"""Learned element embeddings averaged over a composition (the embeddings ship with matminer
and chgnet).

Three tables, read once per process (the first two from ``matminer/utils/data_files/``):

- ``megnet``: the 16-dimensional element embedding of MEGNet trained on Materials Project
  formation energies (Chen et al. 2019);
- ``mat2vec``: the 200-dimensional word embeddings of elements learned from 3 million
  abstracts (Tshitoyan et al. 2019), reduced to ``MAT2VEC_COMPONENTS`` principal components
  of the element table itself (every element in the file, not the training rows, so the
  projection never sees a label and never changes with the data set);
- ``chgnet_el``: the 64-dimensional element embedding of CHGNet 0.3.0 trained on Materials
  Project energies, forces, stresses and magnetic moments (Deng et al. 2023): the weight of
  its first layer (``CHGNet.atom_embedding.embedding``, 94 rows, H to Pu; row Z - 1, as
  CHGNet's forward pass indexes it), loaded offline from the weights in the chgnet wheel.
  All 64 dimensions are kept: the table has no small leading subspace to keep instead (its
  first 16 principal components carry 78 % of the variance, 28 are needed for 90 %), and a
  cut would be one more choice tuned by the study itself. The group name is not ``chgnet``,
  which the package's pooled structure features (``miscreen.featurize.pretrained``) use.
  Result (``model_research.py``, 5 seeds, 100 trees, ensemble without neighbours): worse or
  noise everywhere, never lower on more than 1 of 5 seeds. On top of today's default (+oxi,
  censored at the bound) the mean of the three CVs rises by 0.13 for compositions (noise
  0.04, higher on every seed) and 0.15 with cells (noise 0.03, every seed), nearly all of it
  in leave-cluster-out CV (+0.37, +0.38; DOI -0.03, +0.02). Not adopted.

Per composition: the atom-fraction-weighted mean and standard deviation of every component.
Because similar elements sit close in these spaces (Ge, Si and Sn; S and Se; Zr and Hf), a
model can carry what it learned about one family to a chemical analogue it has not seen,
which the element-fraction columns cannot do. Partial occupancies need no special case: a
disordered composition is just fractional amounts. An element missing from a table (MEGNet
and CHGNet stop at Pu) gets the table's mean vector, as matminer's ``impute_nan`` does.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files

import numpy as np
from pymatgen.core import Composition

from miscreen.featurize.base import Entry, Featurizer
from miscreen.featurize.pretrained import CHGNET, DIM, N_ELEMENTS, model

MAT2VEC_COMPONENTS = 12
MEGNET = (
    "C. Chen, W. Ye, Y. Zuo, C. Zheng and S. P. Ong, Graph networks as a universal machine "
    "learning framework for molecules and crystals, Chem. Mater. 31 (2019) 3564-3572"
)
MAT2VEC = (
    "V. Tshitoyan et al., Unsupervised word embeddings capture latent knowledge from "
    "materials science literature, Nature 571 (2019) 95-98"
)
CHGNET_EL_DIMS = DIM  # CHGNet's atom feature width


def _data_file(name: str) -> str:
    return (files("matminer.utils") / "data_files" / name).read_text()


@cache
def megnet_table() -> dict[str, np.ndarray]:
    """Element symbol -> MEGNet embedding (row Z of the shipped list; row 0 is a dummy)."""
    from pymatgen.core import Element

    rows = json.loads(_data_file("megnet_elemental_embedding.json"))
    return {Element.from_Z(z).symbol: np.asarray(rows[z], dtype=float) for z in range(1, len(rows))}


@cache
def mat2vec_table() -> dict[str, np.ndarray]:
    """Element symbol -> the first principal components of the mat2vec embedding, computed
    on the element table (sign fixed so the largest loading of each axis is positive)."""
    raw = json.loads(_data_file("matscholar_els.json"))
    symbols = sorted(raw)
    m = np.asarray([raw[s] for s in symbols], dtype=float)
    m = m - m.mean(axis=0)
    _, _, vt = np.linalg.svd(m, full_matrices=False)
    axes = vt[:MAT2VEC_COMPONENTS]
    axes *= np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])[:, None]
    proj = m @ axes.T
    return {s: proj[i] for i, s in enumerate(symbols)}


@cache
def chgnet_table() -> dict[str, np.ndarray]:
    """Element symbol -> CHGNet 0.3.0 element embedding (row Z - 1 of the embedding weight)."""
    from pymatgen.core import Element

    weight = model().atom_embedding.embedding.weight.detach().cpu().numpy().astype(float)
    if weight.shape != (N_ELEMENTS, CHGNET_EL_DIMS):
        raise ValueError(f"unexpected CHGNet element embedding shape {weight.shape}")
    return {Element.from_Z(z).symbol: weight[z - 1] for z in range(1, N_ELEMENTS + 1)}


def weighted_mean_std(
    table: dict[str, np.ndarray], composition: Composition
) -> tuple[np.ndarray, np.ndarray]:
    """Atom-fraction-weighted mean and standard deviation of the embedding vectors."""
    amounts = composition.element_composition.get_el_amt_dict()
    fallback = np.mean(list(table.values()), axis=0)
    vecs = np.array([table.get(el, fallback) for el in amounts])
    w = np.array(list(amounts.values()), dtype=float)
    if not len(w) or w.sum() <= 0:
        raise ValueError(f"composition {composition.formula!r} has no atoms")
    w = w / w.sum()
    mean = w @ vecs
    std = np.sqrt(w @ (vecs - mean) ** 2)
    return mean, std


class _EmbeddingFeaturizer(Featurizer):
    needs_structure = False
    version = "1"
    table_name = ""

    def _table(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _dims(self) -> int:
        raise NotImplementedError

    def feature_labels(self) -> list[str]:
        n = self._dims()
        return [f"{self.name}:{stat}_{i}" for stat in ("mean", "std") for i in range(n)]

    def featurize(self, entry: Entry) -> list[float]:
        mean, std = weighted_mean_std(self._table(), entry.composition)
        return [*mean.tolist(), *std.tolist()]


class MegnetEmbeddingFeaturizer(_EmbeddingFeaturizer):
    """Weighted mean and spread of MEGNet's 16-dimensional element embedding."""

    name = "megnet"

    def _table(self) -> dict[str, np.ndarray]:
        return megnet_table()

    def _dims(self) -> int:
        return 16

    def citations(self) -> list[str]:
        return [MEGNET]

    def implementors(self) -> list[str]:
        return ["miscreen (embedding table from matminer)"]


class Mat2VecEmbeddingFeaturizer(_EmbeddingFeaturizer):
    """Weighted mean and spread of the leading principal components of the mat2vec element
    embedding (``MAT2VEC_COMPONENTS`` of 200 dimensions)."""

    name = "mat2vec"

    def _table(self) -> dict[str, np.ndarray]:
        return mat2vec_table()

    def _dims(self) -> int:
        return MAT2VEC_COMPONENTS

    def citations(self) -> list[str]:
        return [MAT2VEC]

    def implementors(self) -> list[str]:
        return ["miscreen (embedding table from matminer)"]


class ChgnetEmbeddingFeaturizer(_EmbeddingFeaturizer):
    """Weighted mean and spread of CHGNet 0.3.0's 64-dimensional element embedding."""

    name = "chgnet_el"

    def _table(self) -> dict[str, np.ndarray]:
        return chgnet_table()

    def _dims(self) -> int:
        return CHGNET_EL_DIMS

    def citations(self) -> list[str]:
        return [CHGNET]

    def implementors(self) -> list[str]:
        return ["miscreen (embedding table from the chgnet 0.3.0 weights)"]
