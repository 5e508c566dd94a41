"""The pretrained (CHGNet) featurizer: length, determinism, disorder mixing, the site cap, and
the fast path (numpy graph, truncated forward) against CHGNet's own path."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Composition, Lattice, Structure

from miscreen.featurize import pretrained
from miscreen.featurize.base import Entry
from miscreen.featurize.pretrained import DIM, MAX_SITES, PretrainedFeaturizer, embed


def rocksalt(anion: str | dict[str, float], cation: str | dict[str, float] = "Li") -> Structure:
    """Conventional rock-salt cell (8 sites) with the given species on each sublattice."""
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.3), [cation, anion], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )


def entry(structure: Structure) -> Entry:
    return Entry(structure.composition, structure.to_json())


def test_vector_has_the_documented_length_and_labels():
    f = PretrainedFeaturizer()
    values = f.featurize(entry(rocksalt("Cl")))
    assert len(values) == len(f.feature_labels()) == 2 * DIM == 128
    assert f.feature_labels()[0] == "chgnet:site_00"
    assert f.feature_labels()[DIM] == "chgnet:li_00"
    assert np.isfinite(values).all()


def test_vector_is_deterministic_and_the_same_batched_or_alone():
    a, b = rocksalt("Cl"), rocksalt("Br")
    first = embed([a, b], batch_size=2)  # one forward pass for both
    assert np.array_equal(first, embed([a, b], batch_size=2))
    np.testing.assert_allclose(embed([b])[0], first[1], rtol=1e-5, atol=1e-6)
    assert not np.allclose(first[0], first[1])  # the anion changes the vector


def test_half_occupied_site_starts_as_the_mean_of_its_elements():
    occ = pretrained.occupancies(rocksalt({"Cl": 0.5, "Br": 0.5}))
    cl = pretrained.site_inputs(pretrained.occupancies(rocksalt("Cl")))
    br = pretrained.site_inputs(pretrained.occupancies(rocksalt("Br")))
    np.testing.assert_allclose(pretrained.site_inputs(occ), (cl + br) / 2, atol=1e-12)


def test_fifty_fifty_site_sits_between_the_two_ordered_ones():
    cl, mixed, br = embed([rocksalt("Cl"), rocksalt({"Cl": 0.5, "Br": 0.5}), rocksalt("Br")])
    apart = np.linalg.norm(cl - br)
    assert np.linalg.norm(mixed - cl) < apart and np.linalg.norm(mixed - br) < apart
    # nearer the midpoint than either end
    mid = np.linalg.norm(mixed - (cl + br) / 2)
    assert mid < min(np.linalg.norm(mixed - cl), np.linalg.norm(mixed - br))


def test_li_half_weights_sites_by_their_li_and_is_nan_without_li():
    no_li = embed([rocksalt("Cl", cation="Na")])[0]
    assert np.isfinite(no_li[:DIM]).all() and np.isnan(no_li[DIM:]).all()
    half_li = embed([rocksalt("Cl", cation={"Li": 0.5, "Na": 0.5})])[0]
    assert np.isfinite(half_li).all()


def test_structure_over_the_site_cap_fails_clearly():
    big = rocksalt("Cl") * (4, 4, 4)  # 512 sites
    assert len(big) > MAX_SITES
    with pytest.raises(ValueError, match=f"512 sites is over .* cap of {MAX_SITES}"):
        embed([big])


def test_featurizer_refuses_an_entry_without_structure():
    with pytest.raises(ValueError, match="needs a structure"):
        PretrainedFeaturizer().featurize(Entry(Composition("LiCl")))


def test_the_opt_in_preset_is_full_plus_the_pretrained_features(tmp_path):
    """``features.preset: full_chgnet`` gives the ``full`` table plus the CHGNet columns,
    cached like any group (a second call reads them back unchanged)."""
    from miscreen.featurize import FeatureOptions, featurize_records
    from miscreen.fetch.pymatgen_examples import load_pymatgen_examples

    records, _ = load_pymatgen_examples(("Li2O", "LiFePO4"))
    opts = FeatureOptions(jobs=1, cache_dir=tmp_path)
    full, _, _ = featurize_records(records, "full", opts)
    both, fails, schema = featurize_records(records, "full_chgnet", opts)
    assert len(fails) == 0 and schema.preset == "full_chgnet"
    chgnet = [c for c in both.columns if c.startswith("chgnet:")]
    assert len(chgnet) == 2 * DIM and np.isfinite(both[chgnet].to_numpy()).all()
    assert both.drop(columns=chgnet).equals(full)
    again, _, _ = featurize_records(records, "full_chgnet", opts)
    assert again.equals(both)


def small_structures() -> dict[str, Structure]:
    """Ordered, disordered (vacancies and a mixed anion site), a 2-site primitive cell (every
    neighbour seen through many images) and a cell without bonds under 3 A (no angles)."""
    return {
        "ordered": rocksalt("Cl"),
        "disordered": rocksalt({"Cl": 0.5, "Br": 0.5}, cation={"Li": 0.5}),
        "primitive": rocksalt("Cl").get_primitive_structure(),
        "no angles": Structure(Lattice.cubic(3.6), ["Li", "F"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    }


GRAPH_FIELDS = (
    "atom_frac_coord",
    "atom_graph",
    "neighbor_image",
    "directed2undirected",
    "undirected2directed",
    "bond_graph",
    "lattice",
)


@pytest.mark.parametrize("name", list(small_structures()))
def test_numpy_graph_is_chgnets_graph_edge_for_edge(name):
    """Same bonds, angles and order as CHGNet's converter (order decides round-off)."""
    structure = small_structures()[name]
    occ = pretrained.occupancies(structure)
    fast = pretrained.crystal_graph(structure, occ)
    ref = pretrained.model().graph_converter(pretrained.placeholder(structure, occ))
    for field in GRAPH_FIELDS:
        a, b = getattr(fast, field), getattr(ref, field)
        if field == "bond_graph" and len(b) == 0:  # CHGNet keeps an empty list as shape (0,)
            assert len(a) == 0
            continue
        assert a.shape == b.shape and (a.to(b.dtype) == b).all(), field
    assert (len(fast.bond_graph) == 0) == (name == "no angles")


@pytest.mark.parametrize("name", list(small_structures()))
def test_truncated_forward_reads_the_layer_chgnet_returns(name):
    """The fast path's atom features are those of CHGNet's full forward
    (``return_atom_feas``): a truncation one block early or late fails this."""
    structure = small_structures()[name]
    occ = pretrained.occupancies(structure)
    graph = pretrained.crystal_graph(structure, occ)
    fast = pretrained.atom_features([graph], pretrained.site_inputs(occ))[0]
    ref = pretrained.reference_atom_features(structure)
    assert fast.shape == ref.shape == (len(structure), DIM)
    np.testing.assert_array_equal(fast, ref)


def test_batched_fast_path_is_the_reference_row_by_row():
    structures = list(small_structures().values())
    batched = embed(structures, batch_size=len(structures))
    for row, structure in zip(batched, structures, strict=True):
        occ = pretrained.occupancies(structure)
        expected = pretrained.pool(pretrained.reference_atom_features(structure), occ)
        np.testing.assert_allclose(row, expected, rtol=1e-5, atol=1e-6)


def test_isolated_atom_fails_like_chgnet():
    apart = Structure(Lattice.cubic(20.0), ["Li", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(ValueError, match="isolated atom"):
        embed([apart])
    with pytest.raises(ValueError, match="isolated atom"):
        pretrained.reference_atom_features(apart)
    lone = Structure(Lattice.cubic(5.0), ["Li"], [[0, 0, 0]])
    assert np.isfinite(embed([lone])[0]).all()  # its own images are its neighbours


@pytest.mark.parametrize("shift", [1, 10**6])  # packed into one integer / too big to pack
def test_edge_keys_pair_every_edge_with_its_reverse(shift):
    center, neighbor = np.array([0, 1, 0, 1]), np.array([1, 0, 1, 0])
    image = np.array([[shift, 0, 0], [-shift, 0, 0], [0, 0, 1], [0, 0, -1]])
    forward, reverse = pretrained.edge_keys(center, neighbor, image)
    assert list(reverse) == [forward[1], forward[0], forward[3], forward[2]]
    assert len(set(forward)) == 4
