"""Pooled SevenNet-0 node features: SevenNet's own forward on ordered structures, occupancy
mixtures on disordered sites, occupancy-weighted pooling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Element, Lattice, Structure

from benchmarks.research import sevennet_embeddings as se

torch.set_num_threads(1)


def rocksalt(a: str, b: dict[str, float] | str, lattice: float = 4.2) -> Structure:
    """A two-site cubic cell: ``a`` at the origin, ``b`` (an element or a mixture) in the
    body centre."""
    return Structure(Lattice.cubic(lattice), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_shape_labels_and_determinism() -> None:
    s = rocksalt("Li", "Cl")
    first, second = se.embed(s), se.embed(s)
    assert first.shape == (2 * se.DIM,) == (len(se.feature_labels()),)
    assert np.isfinite(first).all()
    np.testing.assert_array_equal(first, second)


def test_ordered_mixture_path_is_sevennets_own_forward() -> None:
    s = Structure(
        Lattice.from_parameters(4.1, 4.3, 6.2, 90, 95, 90),
        ["Li", "Li", "P", "S"],
        [[0, 0, 0], [0.5, 0.5, 0.1], [0.2, 0.6, 0.5], [0.7, 0.1, 0.6]],
    )
    occ = se.occupancies(s)
    ours = se.node_features(se.graph(s, occ), occ)
    assert ours.shape == (4, se.DIM)
    np.testing.assert_array_equal(ours, se.reference_node_features(s))


def test_half_and_half_site_lies_between_its_pure_ends() -> None:
    ge, si = rocksalt("Li", "Ge"), rocksalt("Li", "Si")
    mixed = rocksalt("Li", {"Ge": 0.5, "Si": 0.5})
    occ_ge, occ_si, occ_mix = (se.occupancies(s) for s in (ge, si, mixed))
    np.testing.assert_array_equal(occ_mix, (occ_ge + occ_si) / 2)
    # the first layer is linear: the mixed site starts half way between Ge and Si
    first = [se.first_layer(o)[1] for o in (occ_ge, occ_si, occ_mix)]
    np.testing.assert_allclose(first[2], (first[0] + first[1]) / 2, atol=1e-6)
    assert np.all(first[2] >= np.minimum(first[0], first[1]) - 1e-6)
    assert np.all(first[2] <= np.maximum(first[0], first[1]) + 1e-6)
    # and the mixture reaches the output: neither pure end's features
    out = [se.embed(s) for s in (ge, si, mixed)]
    assert not np.allclose(out[2], out[0]) and not np.allclose(out[2], out[1])


def test_vacancy_adds_nothing_and_li_is_weighted_by_occupancy() -> None:
    occ = se.occupancies(rocksalt("Cl", {"Li": 0.5}))
    li = se.type_map()[Element("Li").Z]
    assert occ[1, li] == 0.5 and occ[1].sum() == 0.5
    features = np.array([[1.0] * se.DIM, [3.0] * se.DIM])
    occ2 = np.zeros((2, occ.shape[1]))
    occ2[0, li], occ2[1, li], occ2[1, se.type_map()[17]] = 1.0, 0.5, 0.5
    pooled = se.pool(features, occ2)
    np.testing.assert_allclose(pooled[: se.DIM], 2.0)  # weights 1 and 1
    np.testing.assert_allclose(pooled[se.DIM :], 1.0 + 2.0 / 1.5 * 0.5)  # weights 1, 0.5


def test_no_li_gives_nan_li_half() -> None:
    out = se.embed(rocksalt("Na", "Cl", 5.6))
    assert np.isfinite(out[: se.DIM]).all()
    assert np.isnan(out[se.DIM :]).all()


def test_refuses_elements_outside_the_model_and_oversized_cells() -> None:
    with pytest.raises(ValueError, match="Po"):
        se.occupancies(rocksalt("Li", "Po"))
    big = Structure(Lattice.cubic(40.0), ["Li"] * (se.MAX_SITES + 1),
                    np.random.default_rng(0).random((se.MAX_SITES + 1, 3)))  # fmt: skip
    with pytest.raises(ValueError, match="cap"):
        se.occupancies(big)


def test_signed_log_keeps_the_order_and_pulls_in_the_tails() -> None:
    import pandas as pd

    from benchmarks.pretrained_features import signed_log

    raw = pd.DataFrame({"sevennet:site_000": [-5e7, -1.0, 0.0, 0.5, 3e7, np.nan]})
    out = signed_log(raw)
    assert list(out.columns) == ["sevennet_slog:site_000"]
    values = out.iloc[:5, 0].to_numpy()
    assert np.all(np.diff(values) > 0) and values[2] == 0.0 and np.abs(values).max() < 18
    assert np.isnan(out.iloc[5, 0])
