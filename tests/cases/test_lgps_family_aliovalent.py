"""The lgps-family case's aliovalent analogues: the config's map gives the nine isovalent
analogues and the Al and P ones, nothing more; they are reported beside the nine, with the
Li added or removed, and stay out of the issue's checks."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pymatgen.util
import pytest
from pymatgen.core import Composition, Structure

from miscreen import schema as S
from miscreen.cases import lgps_family as case
from miscreen.config import load_config
from miscreen.generate import substitute
from miscreen.generate.hull import OrderedReferences
from miscreen.pipeline import generation

CONFIG = Path(__file__).parents[2] / "configs" / "lgps-family.yaml"
LGPS = Path(pymatgen.util.__file__).parent / "structures" / "Li10GeP2S12.json"


def test_the_config_generates_the_nine_and_the_six_aliovalent_analogues() -> None:
    cfg = load_config(CONFIG)
    assert cfg.generate.aliovalent
    parent = substitute.ordered_parent(Structure.from_file(LGPS))
    choices = {el: list(new) for el, new in cfg.generate.substitutions.items()}
    out = substitute.explicit(parent, case.PARENT_ID, choices, cfg.generate.aliovalent)
    assert not out.skipped
    got = sorted(c.structure.composition.reduced_formula for c in out.candidates)
    isovalent = [case.formula(m, x) for m in case.METALS for x in case.ANIONS]
    aliovalent = [case.aliovalent_formula(m, x) for m in case.ALIOVALENT for x in case.ANIONS]
    want = sorted(Composition(f).reduced_formula for f in isovalent + aliovalent)
    assert got == want and len(got) == 15
    by_formula = {c.structure.composition.reduced_formula: c for c in out.candidates}
    for anion in case.ANIONS:
        al = by_formula[Composition(case.aliovalent_formula("Al", anion)).reduced_formula]
        p = by_formula[Composition(case.aliovalent_formula("P", anion)).reduced_formula]
        assert al.li_change == 2 and len(al.added_li) == 2
        assert p.li_change == -2 and not p.added_li
    assert sum(1 for c in out.candidates if c.li_change) == 6


def row(rid: str, formula: str, e_hull: float, pred: float, li: int = 0, added=()) -> dict:
    return {
        S.ID: rid,
        S.COMPOSITION: formula,
        generation.SUBSTITUTION: rid.rsplit(":", 1)[-1],
        generation.PROBABILITY: 0.001,
        S.E_HULL: e_hull,
        S.HULL_PHASES: "mp-1,mp-2",
        S.HULL_WARNING: "",
        generation.DUPLICATE: "",
        S.PRED: pred,
        S.LOWER: pred - 1.0,
        S.UPPER: pred + 1.0,
        generation.PREDICTION_INPUT: generation.RELAXED,
        S.BVSE_E3D: 0.5,
        "relax_max_force_ev_a": 0.04,
        "relax_steps": 80,
        "relax_converged": True,
        generation.LI_CHANGE: li,
        generation.LI_ADDED: json.dumps(list(added)),
    }


def test_the_aliovalent_analogues_are_reported_apart_from_the_checks() -> None:
    added = [{"frac_coords": [0.0, 0.0, 0.77], "site_energy_ev": 0.27}]
    table = pd.DataFrame(
        [
            row("lgps", "Li20 Ge2 P4 S24", 0.01, -3.0),
            row("gen:lgps:Ge->Si", "Li20 Si2 P4 S24", 0.0, -3.1),
            row("gen:lgps:Ge->Sn", "Li20 Sn2 P4 S24", 0.02, -3.1),
            row("gen:lgps:Ge->Al,Li+2", "Li22 Al2 P4 S24", 0.9, -1.0, 2, added * 2),
            row("gen:lgps:Ge->P,Li-2", "Li18 P6 S24", 0.05, -4.0, -2),
        ]
    )
    train = pd.DataFrame({S.ID: ["joc"], S.COMPOSITION: ["Li6 P2 S8"], S.TARGET: [-6.59]})
    heldout = pd.DataFrame({S.ID: ["x"], S.COMPOSITION: ["Li10 Si1 P2 S12"], S.TARGET: [-2.4]})
    comps = case.compositions(table, heldout)
    assert set(comps) == {case.formula(m, x) for m in case.METALS for x in case.ANIONS}
    extra = case.aliovalent_analogues(table, train, heldout)
    assert set(extra) == {"Li11AlP2S12", "Li9P3S12"}  # the selenides and oxides not generated
    al, p = extra["Li11AlP2S12"], extra["Li9P3S12"]
    assert al["e_above_hull_ev"] == 0.9 and al["interval_80"] == [-2.0, 0.0]
    assert al["li_change_per_cell"] == 2 and al["li_added"] == added * 2
    assert al["measured"] == []
    assert p["li_change_per_cell"] == -2 and p["li_added"] == []
    assert p["measured"] == [
        {"id": "joc", "log10_sigma": -6.59, "sigma_mS_cm": 1e3 * 10**-6.59, "held_out": False}
    ]
    # the Al sulfide, far above the hull, does not enter the sulfides of the checks
    near = case.checks(comps)["si_sn_sulfides_near_parent"]
    assert near["passed"] and near["margin"] == pytest.approx(0.03 - 0.01)
    assert "Li11AlP2S12" not in near["detail"] and "Li9P3S12" not in near["detail"]
    shown = case.headline(
        {"compositions": comps, "aliovalent_analogues": extra, "checks": {}, "runtime_s": 1.0}
    )
    assert shown["compositions"]["Li11AlP2S12"]["e_above_hull_ev"] == 0.9


def test_a_hull_without_the_analogues_own_polymorphs_is_said() -> None:
    refs = OrderedReferences(
        pd.DataFrame(
            {
                S.ID: ["joc", "mp-1", "mp-2"],
                S.COMPOSITION: ["Li6 P2 S8", "Li3 P1 S4", "Li2 S1"],
                S.E_HULL: [float("nan"), 0.0, 0.0],
                S.STRUCTURE: [None, None, None],
            }
        )
    )
    left_out = case.same_formula_left_out(refs, ["Li9P3S12", "Li11AlP2S12"])
    assert left_out == {"Li9P3S12": ["joc"], "Li11AlP2S12": []}
    table = pd.DataFrame(
        [
            row("gen:lgps:Ge->Al,Li+2", "Li22 Al2 P4 S24", 0.01, -3.0),
            row("gen:lgps:Ge->P,Li-2", "Li18 P6 S24", 0.0, -4.0),
        ]
    )
    empty = pd.DataFrame({S.ID: [], S.COMPOSITION: [], S.TARGET: []})
    out = case.aliovalent_analogues(table, empty, empty, left_out)
    assert out["Li9P3S12"]["hull_left_out_same_formula"] == ["joc"]
    assert "joc" in out["Li9P3S12"]["hull_note"]
    assert out["Li11AlP2S12"]["hull_left_out_same_formula"] == []
    assert "hull_note" not in out["Li11AlP2S12"]
