"""The fast paths give the library's exact floats: Magpie statistics (matminer), the
oxidation-state guess (pymatgen), the density (pymatgen), on real compositions and
structures; and a preset without structure groups never builds the neighbour list."""

from __future__ import annotations

import gzip
import json
from itertools import islice

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Composition

from miscreen import schema as S
from miscreen.featurize import composition, featurize_table
from miscreen.featurize.context import density
from miscreen.featurize.oxidation import MAX_GUESS_ATOMS, most_probable
from miscreen.fetch.parsing import structure_from_json
from tests.conftest import SHARED

EDGE_CASES = (
    "Li",  # one element
    "HeLi",  # an element with no oxidation states
    "Li0.33La0.56TiO3",  # fractional amounts
    "LiNaKRbCsBeMgCaSrBaO11",  # 11 elements: numpy's pairwise sums unroll beyond 8
    "Li7La3Zr2O12",
    "Fe3O4",  # mixed valence
    "Li2MnO3",
)


@pytest.fixture(scope="module")
def compositions(obelix_all) -> list[Composition]:
    """OBELiX's compositions, the first 300 of the mp-2018 snapshot, and edge cases."""
    records, _ = obelix_all
    out = [Composition(c) for c in records[S.COMPOSITION]]
    with gzip.open(SHARED / "mp-2018" / "mp_2018_matminer.jsonl.gz", "rt") as fh:
        for line in islice(fh, 300):
            amounts: dict[str, float] = {}
            for site in json.loads(line)["structure"]["sites"]:
                for sp in site["species"]:
                    amounts[sp["element"]] = amounts.get(sp["element"], 0.0) + sp["occu"]
            out.append(Composition(amounts))
    return out + [Composition(f) for f in EDGE_CASES]


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))


def test_magpie_is_matminers_element_property_to_the_bit(compositions) -> None:
    from matminer.featurizers.composition import ElementProperty

    reference = ElementProperty.from_preset("magpie", impute_nan=True)
    differ = [
        c.formula
        for c in compositions
        if not same(composition.magpie(c), np.asarray(reference.featurize(c), dtype=float))
    ]
    assert not differ, differ[:5]


def test_composition_group_is_matminers_four_featurizers_to_the_bit(compositions) -> None:
    """Magpie and valence orbitals computed here, stoichiometry and element fractions by
    matminer: the whole vector equals matminer's, featurizer by featurizer."""
    from matminer.featurizers.composition import (
        ElementFraction,
        ElementProperty,
        Stoichiometry,
        ValenceOrbital,
    )

    reference = (
        ElementProperty.from_preset("magpie", impute_nan=True),
        Stoichiometry(),
        ValenceOrbital(impute_nan=True),
        ElementFraction(),
    )
    differ = []
    for c in compositions:
        expected = np.asarray([v for f in reference for v in f.featurize(c)], dtype=float)
        if not same(composition.featurize(c), expected):
            differ.append(c.formula)
    assert not differ, differ[:5]


def test_most_probable_oxidation_states_are_pymatgens_first_guess(compositions) -> None:
    checked = 0
    for comp in compositions:
        reduced = comp.reduced_composition
        if reduced.num_atoms > MAX_GUESS_ATOMS or len(reduced) > 5:
            continue  # outside the budget: pymatgen is not asked
        try:
            guesses = reduced.oxi_state_guesses(max_sites=-MAX_GUESS_ATOMS)
        except ValueError:  # fractional amounts
            guesses = ()
        expected = dict(guesses[0]) if guesses else None
        got = most_probable(reduced)
        assert got == expected, reduced.formula
        if got is not None:
            assert list(got) == list(expected), reduced.formula  # same element order
            assert all(type(got[k]) is type(expected[k]) for k in got)
        checked += 1
    assert checked > 250


def test_density_is_pymatgens(obelix_all) -> None:
    records, _ = obelix_all
    texts = records[S.STRUCTURE].dropna()
    assert len(texts) == 321
    for text in texts:
        structure = structure_from_json(text)
        assert density(structure.composition, structure.volume) == structure.density


def test_composition_preset_never_builds_the_structure_context(records, monkeypatch) -> None:
    """Rows with a structure, a preset without structure groups: no neighbour list."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the structure context was built")

    full = featurize_table(records, "full", jobs=1).features
    monkeypatch.setattr("miscreen.featurize.base.build_context", refuse)
    for preset in ("composition", "cell"):
        res = featurize_table(records, preset, jobs=1)
        assert res.failures.empty, res.failures.to_string()
        shared = [c for c in res.features.columns if c in full.columns]
        pd.testing.assert_frame_equal(res.features[shared], full[shared])


def test_icsd_table_is_the_one_pymatgen_scores_with() -> None:
    from miscreen.featurize.oxidation import _icsd_occurrence

    Composition("LiF").oxi_state_guesses()  # pymatgen loads Composition.oxi_prob
    ours, theirs = _icsd_occurrence(), Composition.oxi_prob
    assert ours == theirs
    assert all(type(ours[k]) is type(theirs[k]) for k in theirs)


def test_weighted_statistics_are_numpy_averages_to_the_bit():
    """``wstats`` skips ``np.average``'s checks but keeps its arithmetic: the same floats on
    random vectors with zero weights, NaN values and magnitudes from 1e-3 to 1e3."""
    from miscreen.featurize.base import wstats

    rng = np.random.default_rng(0)
    for _ in range(2000):
        n = int(rng.integers(1, 40))
        v = rng.normal(size=n) * 10.0 ** rng.integers(-3, 4)
        w = rng.random(n) * (rng.random(n) > 0.2)
        v[0] = np.nan if rng.random() < 0.1 else v[0]
        ok = (w > 0) & np.isfinite(v)
        if not ok.any():
            assert all(np.isnan(wstats(v, w)))
            continue
        mean = np.average(v[ok], weights=w[ok])
        std = np.sqrt(np.average((v[ok] - mean) ** 2, weights=w[ok]))
        assert wstats(v, w) == (mean, std, v[ok].min(), v[ok].max())


def test_neighbor_list_is_pymatgens(obelix_all) -> None:
    """``neighbor_list`` calls pymatgen's compiled search directly: the same four arrays as
    ``Structure.get_neighbor_list`` on OBELiX's CIFs (ordered and disordered)."""
    from miscreen.featurize.context import CUTOFF, neighbor_list

    records, _ = obelix_all
    for text in records[S.STRUCTURE].dropna().iloc[::8]:
        structure = structure_from_json(text)
        ours = neighbor_list(structure, structure.cart_coords, CUTOFF)
        theirs = structure.get_neighbor_list(CUTOFF)
        assert all(same(a, b) for a, b in zip(ours, theirs, strict=True))


def test_li_econ_shared_with_the_cation_econ_is_its_own_to_the_bit(obelix_all) -> None:
    """The Li group reads the Li sites' ECoN from the structure group's cation ECoN: the
    same floats as computing it over the Li-anion pairs alone, and where Li is an anion
    (Sr3Li2, Li- in pymatgen's guess) it is computed apart, not lost."""
    from pymatgen.core import Lattice, Structure

    from miscreen.featurize.base import Entry
    from miscreen.featurize.context import build_context, effective_cn
    from miscreen.featurize.li_sites import LiSiteFeaturizer

    def own(ctx) -> np.ndarray:
        pair = (ctx.li[ctx.center] > 0) & (ctx.anion[ctx.neighbor] > 0)
        c, d, nb = ctx.center[pair], ctx.dist[pair], ctx.neighbor[pair]
        return effective_cn(c, d, ctx.anion[nb], ctx.n_sites)[0][ctx.li > 0]

    records, _ = obelix_all
    for text in records[S.STRUCTURE].dropna().iloc[::4]:
        ctx = build_context(structure_from_json(text))
        assert same(ctx.cation_econ[0][ctx.li > 0], own(ctx))

    li_anion = Structure(Lattice.cubic(4.2), ["Sr", "Li"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    entry = Entry(li_anion.composition)
    entry.__dict__["structure"] = li_anion
    assert "Li" in entry.context.oxidation.anions
    li = LiSiteFeaturizer()
    values = dict(zip(li.feature_labels(), li.featurize(entry), strict=True))
    assert values["li:li_cn_mean"] == own(entry.context)[0]
    assert np.isfinite(values["li:li_cn_mean"])
