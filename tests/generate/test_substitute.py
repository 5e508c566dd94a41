"""Substitution: the compositions an explicit map or the data give, their charge balance,
probabilities, volumes, and what is skipped with a reason."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pymatgen.util
import pytest
from pymatgen.core import Composition, Element, Species, Structure
from pymatgen.core.structure_prediction.substitution_probability import SubstitutionProbability

from miscreen.generate import substitute

EXAMPLES = Path(pymatgen.util.__file__).parent / "structures"


def example(name: str) -> Structure:
    return Structure.from_file(EXAMPLES / f"{name}.json")


@pytest.fixture(scope="module")
def lgps() -> Structure:
    return substitute.ordered_parent(example("Li10GeP2S12"))


def formulas(subs: substitute.Substitutions) -> set[str]:
    return {c.structure.composition.reduced_formula for c in subs.candidates}


def test_an_explicit_map_on_li2o_gives_every_choice_charge_balanced():
    out = substitute.explicit(example("Li2O"), "p", {"O": ["S", "Se"]})
    assert formulas(out) == {"Li2O", "Li2S", "Li2Se"}
    assert not out.skipped
    by_sub = {c.substitution: c for c in out.candidates}
    assert set(by_sub) == {"", "O->S", "O->Se"}
    assert by_sub[""].id == "p" and by_sub["O->S"].id == "gen:p:O->S"
    table = SubstitutionProbability()
    li, o = Species("Li", 1), Species("O", -2)
    for new in ("S", "Se"):
        c = by_sub[f"O->{new}"]
        assert c.parent_id == "p"
        assert c.oxidation_states == {"Li": 1.0, new: -2.0}
        assert substitute.charge(c.structure, c.oxidation_states) == 0
        expected = table.cond_prob(li, li) * table.cond_prob(o, Species(new, -2))
        assert c.probability == pytest.approx(expected)
    # the larger anion gets a larger cell before any relaxation
    assert (
        by_sub["O->Se"].structure.volume
        > by_sub["O->S"].structure.volume
        > by_sub[""].structure.volume
    )


def test_the_lgps_map_gives_nine_balanced_analogues(lgps):
    out = substitute.explicit(lgps, "lgps", {"Ge": ["Si", "Sn"], "S": ["Se", "O"]})
    want = {
        Composition(f"Li10{m}P2{x}12").reduced_formula
        for m in ("Ge", "Si", "Sn")
        for x in ("S", "Se", "O")
    }
    assert formulas(out) == want and len(out.candidates) == 9
    for c in out.candidates:
        assert substitute.charge(c.structure, c.oxidation_states) == 0
        assert c.structure.is_ordered and len(c.structure) == 50
        assert math.isfinite(c.probability) and 0 < c.probability < 1
    volume = {c.substitution: c.structure.volume for c in out.candidates}
    assert volume["S->O"] < volume[""] < volume["S->Se"]


def test_aliovalent_substitutions_remove_or_add_li_only_when_asked(lgps):
    plain = substitute.explicit(lgps, "lgps", {"Ge": ["P", "Al"]})
    reasons = dict(plain.skipped)
    assert "aliovalent not asked for" in reasons["Ge->P"]
    assert "changes the charge by -2" in reasons["Ge->Al"]
    asked = substitute.explicit(lgps, "lgps", {"Ge": ["P", "Al"]}, aliovalent=True)
    assert not asked.skipped
    by_sub = {c.substitution: c for c in asked.candidates}
    assert set(by_sub) == {"", "Ge->P,Li-2", "Ge->Al,Li+2"}
    li3ps4 = by_sub["Ge->P,Li-2"]
    assert li3ps4.li_change == -2 and not li3ps4.added_li
    assert li3ps4.structure.composition == Composition("Li18P6S24")
    assert substitute.charge(li3ps4.structure, li3ps4.oxidation_states) == 0
    li11 = by_sub["Ge->Al,Li+2"]  # Li11AlP2S12: two Li added to the 50-atom cell
    assert li11.id == "gen:lgps:Ge->Al,Li+2" and li11.li_change == 2
    assert li11.structure.composition == Composition("Li22Al2P4S24")
    assert substitute.charge(li11.structure, li11.oxidation_states) == 0
    assert li11.structure.frac_coords[:50] == pytest.approx(
        substitute.explicit(lgps, "lgps", {"Ge": ["Al"]}, aliovalent=True)
        .candidates[1]
        .structure.frac_coords[:50]
    )  # deterministic, the parent's sites kept as they are
    added = li11.structure[50:]
    assert [s.specie.symbol for s in added] == ["Li", "Li"]
    assert [tuple(s.frac_coords) for s in added] == [a.frac_coords for a in li11.added_li]
    distances = li11.structure.distance_matrix[50:]
    distances[[0, 1], [50, 51]] = np.inf  # each added Li from itself
    assert distances.min() >= 1.8
    assert li11.added_li[0].site_energy_ev <= li11.added_li[1].site_energy_ev


def test_data_mined_substitutions_keep_li_and_pass_the_threshold():
    out = substitute.data_mined(example("Li2O"), "p", min_probability=1e-3, limit=10)
    subs = [c.substitution for c in out.candidates]
    assert subs[0] == "" and "O->S" in subs
    for c in out.candidates:
        assert c.structure.composition["Li"] == 2
        assert not any(Element(el).is_radioactive for el in c.oxidation_states)
        assert substitute.charge(c.structure, c.oxidation_states) == 0
    probabilities = [c.probability for c in out.candidates[1:]]
    assert probabilities == sorted(probabilities, reverse=True)


def test_a_map_naming_an_absent_element_is_refused():
    with pytest.raises(ValueError, match="names Ge, not in p"):
        substitute.explicit(example("Li2O"), "p", {"Ge": ["Si"]})
