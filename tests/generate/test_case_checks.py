"""The lgps-family case's checks: passed or missed, and by how much."""

from __future__ import annotations

import pytest

from miscreen.cases import lgps_family as case


def family(e_hull: dict[str, float], pred: dict[str, float], barrier: dict[str, float]) -> dict:
    """Compositions keyed like the case's, M x X, with values by formula (others missing)."""
    out = {}
    for m in case.METALS:
        for x in case.ANIONS:
            f = case.formula(m, x)
            out[f] = {
                "generated": True,
                "e_above_hull_ev": e_hull.get(f),
                "pred_log10_sigma": pred.get(f),
                "interval_80": [pred[f] - 1.0, pred[f] + 1.0] if f in pred else [None, None],
                "bvse_barrier_ev": barrier.get(f),
                "measured": [],
                "hull_warning": "no quaternary phase" if x == "S" else "",
            }
    return out


def values(sulfide: float, selenide: float, oxide: float, step: float = 0.0) -> dict:
    return {
        case.formula(m, x): v + k * step
        for k, m in enumerate(case.METALS)
        for x, v in zip(case.ANIONS, (sulfide, selenide, oxide), strict=True)
    }


def test_the_oxide_checks_give_their_margins():
    comps = family(values(0.01, 0.02, 0.20, 0.01), values(-2.5, -2.4, -5.0), values(0.3, 0.3, 0.6))
    checks = case.checks(comps)
    hull = checks["oxides_above_sulfides_on_hull"]
    # lowest oxide 0.20, highest sulfide 0.03, wanted a gap of 0.05
    assert hull["passed"] and hull["margin"] == pytest.approx(0.20 - 0.03 - 0.05)
    assert hull["sulfide_hulls_lack"] == {
        case.formula(m, "S"): "no quaternary phase" for m in case.METALS
    }
    assert checks["oxides_slower_predicted"]["margin"] == pytest.approx(2.5)
    assert checks["oxides_higher_bvse_barrier"]["margin"] == pytest.approx(0.3)
    near = checks["si_sn_sulfides_near_parent"]  # Si +0.01, Sn +0.02 from Ge
    assert near["passed"] and near["margin"] == pytest.approx(0.01)


def test_a_missed_check_says_by_how_much():
    comps = family(values(0.0, 0.0, 0.03, 0.04), values(-2.5, -2.4, -2.0), values(0.5, 0.5, 0.3))
    checks = case.checks(comps)
    assert not checks["oxides_above_sulfides_on_hull"]["passed"]
    assert checks["oxides_above_sulfides_on_hull"]["margin"] == pytest.approx(0.03 - 0.08 - 0.05)
    assert checks["oxides_slower_predicted"]["margin"] == pytest.approx(-0.5)
    assert checks["oxides_higher_bvse_barrier"]["margin"] == pytest.approx(-0.2)
    near = checks["si_sn_sulfides_near_parent"]  # Sn sulfide 0.08 above Ge's
    assert not near["passed"] and near["margin"] == pytest.approx(0.03 - 0.08)


def test_measured_conductivities_inside_or_outside_the_intervals():
    comps = family({}, values(-2.5, -2.4, -5.0), {})
    si, sn = comps[case.formula("Si", "S")], comps[case.formula("Sn", "S")]
    si["measured"] = [{"id": "02p", "log10_sigma": -2.64}]
    sn["measured"] = [{"id": "13q", "log10_sigma": -2.40}, {"id": "9lx", "log10_sigma": -2.15}]
    inside = case.intervals_cover(comps)  # intervals [-3.5, -1.5]
    assert inside["passed"] and inside["margin"] == pytest.approx(0.65)
    sn["measured"].append({"id": "far", "log10_sigma": -1.2})
    outside = case.intervals_cover(comps)
    assert not outside["passed"] and outside["margin"] == pytest.approx(-0.3)
    sn["measured"] = []
    assert case.intervals_cover(comps)["margin"] is None
