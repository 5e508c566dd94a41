"""Oxidation-state-aware composition features: agree with matminer, stay within budget."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from pymatgen.core import Composition, Element, Species

from miscreen.featurize.base import Entry
from miscreen.featurize.oxi_composition import OxidationCompositionFeaturizer

F = OxidationCompositionFeaturizer()


def features(formula: str) -> dict[str, float]:
    values = F.featurize(Entry(Composition(formula)))
    labels = F.feature_labels()
    assert len(values) == len(labels)
    return {label.split(":", 1)[1]: v for label, v in zip(labels, values, strict=True)}


def test_li3ps4_framework_cation_is_p5() -> None:
    v = features("Li3PS4")
    assert v["guess_balanced"] == 1.0
    assert (v["oxi_min"], v["oxi_max"], v["oxi_range"]) == (-2.0, 5.0, 7.0)
    r = Species("P", 5).ionic_radius
    assert v["framework_charge_mean"] == pytest.approx(5.0)
    assert v["framework_radius_mean"] == pytest.approx(r)
    assert v["field_strength_max"] == pytest.approx(5.0 / r**2)


def test_statistics_agree_with_matminer() -> None:
    """min/max/range/mean as matminer's OxidationStates and ElectronegativityDiff; the spread
    is the population std of atom fractions (matminer's weighted std has a correction that
    depends on the formula's scale: Li7La3Zr2O12 and Li14La6Zr4O24 would differ)."""
    from matminer.featurizers.composition import ElectronegativityDiff, OxidationStates

    comp = Composition("Li7La3Zr2O12")
    v = features(comp.formula)
    oxi = comp.add_charges_from_oxi_state_guesses()
    lo, hi, rng = OxidationStates(stats=["minimum", "maximum", "range"]).featurize(oxi)
    assert [v["oxi_min"], v["oxi_max"], v["oxi_range"]] == pytest.approx([lo, hi, rng])
    q = np.array([1.0] * 7 + [3.0] * 3 + [4.0] * 2 + [-2.0] * 12)
    assert v["oxi_std"] == pytest.approx(q.std())
    en = ElectronegativityDiff(stats=["minimum", "maximum", "range", "mean"]).featurize(oxi)
    ours = [v[f"en_diff_{s}"] for s in ("min", "max", "range", "mean")]
    assert ours == pytest.approx(en)
    assert features("Li14La6Zr4O24") == pytest.approx(v)


def test_li_only_cation_leaves_framework_nan_and_en_difference_defined() -> None:
    v = features("LiCl")
    assert math.isnan(v["framework_radius_mean"])
    assert v["en_diff_mean"] == pytest.approx(Element("Cl").X - Element("Li").X)
    assert v["ionic_char_max"] == pytest.approx(
        1 - math.exp(-((Element("Cl").X - Element("Li").X) ** 2) / 4)
    )


def test_large_disordered_formula_uses_the_fallback_quickly() -> None:
    start = time.perf_counter()
    v = features("Li6.25Ga0.25La3Zr1.75Ta0.25O12")
    assert time.perf_counter() - start < 5.0  # the combinatorial guesser is never run
    assert v["guess_balanced"] == 0.0
    assert np.isfinite(list(v.values())).all()


def test_a_structure_changes_nothing_and_is_never_built() -> None:
    """Composition features: a CIF row and the same formula typed by a user agree."""
    from tests.featurize.conftest import rocksalt

    s = rocksalt()
    s.add_oxidation_state_by_element({"Li": 1, "Cl": -1})
    entry = Entry(s.composition.element_composition, s.to_json())
    assert F.featurize(entry) == pytest.approx(list(features("LiCl").values()), nan_ok=True)
    assert "structure" not in entry.__dict__  # no structure parsed, no neighbour list


def test_fallback_caps_cations_at_their_highest_known_state() -> None:
    """OBELiX's CIF of entry ckw writes a mixed O/F site as two full sites (O96 F32 for
    Nb8): the fallback used to balance that with Nb+23 and Sr+9."""
    from miscreen.featurize.oxidation import guess

    ox = guess(Composition("Li4Sr3.728Nb8O96F32"))
    assert ox.method == "electronegativity"
    assert ox.states["Nb"] == 5.0 and ox.states["Sr"] == 2.0
    # a balanced formula is still balanced exactly
    ox = guess(Composition("Li8Sr7.2Nb16O48F6.4"))
    charge = {"Li": 8, "Sr": 7.2, "Nb": 16, "O": 48, "F": 6.4}
    assert sum(ox.states[el] * n for el, n in charge.items()) == pytest.approx(0.0)


def test_formula_and_composition_presets_carry_the_oxidation_group() -> None:
    from miscreen.featurize.presets import feature_schema

    for preset in ("composition", "cell"):
        assert sum(n.startswith("oxi:") for n in feature_schema(preset).names) == len(
            F.feature_labels()
        )
    assert not any(n.startswith("oxi:") for n in feature_schema("full").names)
