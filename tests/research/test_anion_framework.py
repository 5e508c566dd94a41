"""Anion-framework features: sublattice distances and how Li polyhedra share anions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pymatgen.core import Composition, Lattice, Structure

from benchmarks.research.anion_framework import AnionFrameworkFeaturizer
from miscreen.featurize.base import Entry
from tests.featurize.conftest import li2o, rocksalt

F = AnionFrameworkFeaturizer()


def features(structure: Structure) -> dict[str, float]:
    entry = Entry(structure.composition, structure.to_json())
    values = F.featurize(entry)
    labels = F.feature_labels()
    assert len(values) == len(labels)
    return {label.split(":", 1)[1]: v for label, v in zip(labels, values, strict=True)}


def bcc_tetrahedral(a: float = 6.0, occupancy: float = 1 / 3) -> Structure:
    """bcc S with Li spread over all 12 tetrahedral sites (the Wang et al. ideal)."""
    tet = []
    for i in range(3):
        for u in (0.25, 0.75):
            p = [0.5, u, 0.0]
            tet.append([p[(k - i) % 3] for k in range(3)])
            q = [0.0, u, 0.5]
            tet.append([q[(k - i) % 3] for k in range(3)])
    species = ["S", "S"] + [{"Li": occupancy}] * len(tet)
    return Structure(Lattice.cubic(a), species, [[0, 0, 0], [0.5, 0.5, 0.5], *tet])


def test_rocksalt_octahedra_share_edges() -> None:
    v = features(rocksalt())
    assert v["anion_nn_mean"] == pytest.approx(5.14 / 2**0.5)
    assert v["anion_nn_cv"] == pytest.approx(0.0, abs=1e-9)
    assert v["anion_anion_cn"] == pytest.approx(12.0, abs=0.1)
    assert v["li_shared_anions"] == pytest.approx(2.0)
    assert (v["li_edge_sharing"], v["li_face_sharing"]) == (1.0, 0.0)


def test_antifluorite_tetrahedra_share_edges() -> None:
    v = features(li2o())
    assert v["anion_nn_mean"] == pytest.approx(4.61 / 2**0.5)
    assert v["li_shared_anions"] == pytest.approx(2.0)


def test_bcc_tetrahedral_sites_share_faces_and_disorder_keeps_geometry() -> None:
    v = features(bcc_tetrahedral())
    assert v["li_shared_anions"] == pytest.approx(3.0)
    assert v["li_face_sharing"] == 1.0
    assert v["anion_nn_mean"] == pytest.approx(6.0 * 3**0.5 / 2)
    assert v == pytest.approx(features(bcc_tetrahedral(occupancy=0.2)))


def test_no_li_site_leaves_sharing_nan_and_no_structure_is_an_error() -> None:
    nacl = rocksalt()
    nacl.replace_species({"Li": "Na"})
    v = features(nacl)
    assert math.isnan(v["li_shared_anions"])
    assert np.isfinite(v["anion_nn_mean"])
    with pytest.raises(ValueError, match="needs a structure"):
        F.featurize(Entry(Composition("Li3PS4")))
