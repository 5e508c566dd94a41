"""Ranking on hand-made frames: filters and their reasons, scores, supply risk, Pareto."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from miscreen.screen import Filters, rank_candidates
from miscreen.screen.criteria import pareto_front, site_count, supply_metrics


def _frame(rows: list[dict]) -> pd.DataFrame:
    base = {
        "source": "test",
        "structure": None,
        "z": math.nan,
        "e_above_hull": math.nan,
        "band_gap": math.nan,
        "uncertainty": 0.5,
        "out_of_domain": False,
    }
    out = pd.DataFrame([{**base, **r} for r in rows])
    out["formula"] = out["composition"]
    out["lower"] = out["predicted_log10_sigma"] - 0.5
    out["upper"] = out["predicted_log10_sigma"] + 0.5
    return out


def _cell_json(n: int) -> str:
    species = ["Li"] * (n // 2) + ["Cl"] * (n - n // 2)
    coords = [[i / n, 0, 0] for i in range(n)]
    return Structure(Lattice.cubic(3.0 * n), species, coords).to_json()


@pytest.fixture
def frame() -> pd.DataFrame:
    return _frame(
        [
            {"id": "good", "composition": "Li3PS4", "predicted_log10_sigma": -3.0},
            {"id": "best", "composition": "Li10GeP2S12", "predicted_log10_sigma": -2.0},
            {"id": "no-li", "composition": "Na3PS4", "predicted_log10_sigma": -1.0},
            {"id": "cobalt", "composition": "LiCoO2", "predicted_log10_sigma": -1.5},
            {
                "id": "unstable",
                "composition": "Li2S",
                "predicted_log10_sigma": -1.2,
                "e_above_hull": 0.3,
            },
            {
                "id": "metal",
                "composition": "LiTiS2",
                "predicted_log10_sigma": -1.1,
                "band_gap": 0.0,
            },
            {
                "id": "huge",
                "composition": "LiCl",
                "predicted_log10_sigma": -1.3,
                "structure": _cell_json(40),
            },
            {"id": "little-li", "composition": "LiNb3O8", "predicted_log10_sigma": -1.4},
            {"id": "alloy", "composition": "Li15Si4", "predicted_log10_sigma": -0.5},
            {"id": "no-pred", "composition": "Li2O", "predicted_log10_sigma": math.nan},
        ]
    )


FILTERS = Filters(
    require_elements=("Li",),
    require_any_elements=("O", "S", "Cl"),
    exclude_elements=("Co",),
    max_e_above_hull=0.1,
    min_band_gap=0.5,
    max_sites=30,
    min_li_fraction=0.1,
)


def test_each_filter_names_itself(frame):
    ranked = rank_candidates(frame, FILTERS).set_index("id")
    reasons = ranked["excluded_reason"]
    assert "lacks required element(s) Li" in reasons["no-li"]
    assert "contains excluded element(s) Co" in reasons["cobalt"]
    assert reasons["unstable"].startswith("e_above_hull 0.300 > 0.1")
    assert reasons["metal"].startswith("band_gap 0.00 < 0.5")
    assert reasons["huge"] == "40 sites > max_sites 30"
    assert reasons["little-li"].startswith("Li fraction 0.083 < min_li_fraction 0.1")
    assert reasons["alloy"] == "none of O, S, Cl (require_any_elements)"
    assert reasons["no-pred"].startswith("no prediction")
    for rid in reasons.index[reasons != ""]:
        assert pd.isna(ranked.at[rid, "rank"])
        assert ranked.at[rid, "why"] == f"excluded: {reasons[rid]}"


def test_unknown_stability_and_gap_do_not_exclude(frame):
    ranked = rank_candidates(frame, FILTERS).set_index("id")
    assert list(ranked.index[:2]) == ["best", "good"]
    assert ranked.loc["best", "rank"] == 1 and ranked.loc["good", "rank"] == 2
    assert "E_hull unknown" in ranked.loc["best", "why"]


def test_why_states_the_criteria_values(frame):
    ranked = rank_candidates(frame, FILTERS).set_index("id")
    why = ranked.loc["best", "why"]
    assert why.startswith("rank 1/2 by score -2.00 (mean)")
    assert "log10 sigma -2.00 [-2.50, -1.50]" in why
    assert "supply risk 0.17 (mostly Ge)" in why
    assert "cost 211 USD/kg" in why and "Li fraction 0.40" in why


def test_scores_lower_upper_and_supply_weight(frame):
    frame.loc[frame["id"] == "good", "upper"] = -1.0  # a wide, optimistic interval
    by_upper = rank_candidates(frame, FILTERS, score="upper")
    assert by_upper.iloc[0]["id"] == "good"
    by_lower = rank_candidates(frame, FILTERS, score="lower")
    assert by_lower.iloc[0]["id"] == "best"
    # Ge's supply risk (0.17) vs Li3PS4's (0.12): a heavy weight reorders a 1-unit gap
    weighted = rank_candidates(frame, FILTERS, supply_risk_weight=30.0)
    assert weighted.iloc[0]["id"] == "good"
    assert "- 30 x supply risk" in weighted.iloc[0]["why"]
    with pytest.raises(ValueError, match="score must be one of"):
        rank_candidates(frame, FILTERS, score="median")
    with pytest.raises(ValueError, match="supply_risk_weight must be >= 0"):
        rank_candidates(frame, FILTERS, supply_risk_weight=-1)


def test_supply_risk_from_documented_hhi_and_cost():
    lgps, si = supply_metrics("Li10GeP2S12"), supply_metrics("Li10SiP2S12")
    llzo = supply_metrics("Li7La3Zr2O12")
    assert lgps["supply_risk"] > si["supply_risk"] and lgps["supply_risk_driver"] == "Ge"
    assert lgps["cost_usd_per_kg"] > 5 * si["cost_usd_per_kg"]  # Ge costs ~1450 USD/kg
    assert llzo["supply_risk"] > 0.5 and llzo["supply_risk_driver"] == "La"  # rare earth
    assert supply_metrics("LiCoO2")["supply_risk_driver"] == "Co"
    # Li alone: production HHI 2900 in Gaultois et al. (2013)
    assert supply_metrics("Li")["supply_risk"] == pytest.approx(0.29)
    lih = supply_metrics("LiH")
    assert lih["element_data_missing"] == "H" and lih["supply_risk"] == pytest.approx(0.29)


def test_supply_metrics_agree_with_pymatgen_hhi_model():
    from pymatgen.analysis.hhi import HHIModel

    model = HHIModel()
    for formula in ("Li10GeP2S12", "Li7La3Zr2O12", "Li6PS5Cl", "LiCoO2"):
        ours = supply_metrics(formula)
        assert ours["hhi_production"] == pytest.approx(model.get_hhi_production(formula))
        assert ours["hhi_reserve"] == pytest.approx(model.get_hhi_reserve(formula))


def test_site_count_from_structure_or_composition():
    assert site_count(_cell_json(6), "LiCl", math.nan) == 6
    assert site_count(None, "Li3PS4", 2.0) == 16
    assert math.isnan(site_count(None, "Li3PS4", math.nan))


def test_pareto_front_on_hand_made_points():
    pts = pd.DataFrame(
        {
            "sigma": [-2.0, -3.0, -2.0, -1.0, -4.0, -1.0],
            "ehull": [0.0, 0.0, 0.05, 0.2, 0.3, math.nan],
            "risk": [0.2, 0.1, 0.2, 0.3, 0.5, 0.05],
        },
        index=list("abcdef"),
    )
    front = pareto_front(pts, {"sigma": "max", "ehull": "min", "risk": "min"})
    # c is dominated by a (worse ehull); e by everything; f's unknown ehull counts as worst
    # but nothing beats its conductivity and risk together
    assert front.to_dict() == {"a": True, "b": True, "c": False, "d": True, "e": False, "f": True}
    with pytest.raises(ValueError, match="sense must be 'max' or 'min'"):
        pareto_front(pts, {"sigma": "up"})


def test_pareto_only_among_ranked(frame):
    ranked = rank_candidates(frame, FILTERS).set_index("id")
    assert not ranked.loc[ranked["rank"].isna(), "pareto_optimal"].any()
    # best: higher sigma, good: lower supply risk -> both on the front
    assert ranked.loc[["best", "good"], "pareto_optimal"].all()
    assert "Pareto-optimal" in ranked.loc["best", "why"]


def _gap_rows() -> pd.DataFrame:
    frame = _frame(
        [
            {"id": "known-small", "composition": "Li3PS4", "predicted_log10_sigma": -3.0},
            {"id": "coin-flip", "composition": "Li3PO4", "predicted_log10_sigma": -3.1},
            {"id": "surely-small", "composition": "Li3BO3", "predicted_log10_sigma": -3.2},
            {"id": "wide", "composition": "Li2SO4", "predicted_log10_sigma": -3.3},
            {"id": "redox", "composition": "LiFePO4", "predicted_log10_sigma": -2.0},
        ]
    )
    frame["band_gap"] = [0.4, 0.9, 0.2, 3.0, 3.5]
    frame["band_gap_sd"] = [0.0, 0.3, 0.2, 0.5, 0.0]
    frame["band_gap_method"] = ["source", "composition_model", "composition_model",
                                "composition_n_model", "source"]  # fmt: skip
    return frame


def test_an_estimated_gap_removes_a_row_only_when_it_is_surely_too_small():
    """A source gap below the minimum removes the row; an estimate removes it only when
    P(gap >= minimum) < min_p_band_gap (0.9 +- 0.3 eV reaches 1 eV with P 0.37: kept)."""
    filters = Filters(min_band_gap=1.0, min_p_band_gap=0.1)
    ranked = rank_candidates(_gap_rows(), filters).set_index("id")
    reasons = ranked["excluded_reason"]
    assert reasons["known-small"] == "band_gap 0.40 < 1.0 eV (source)"
    assert reasons["coin-flip"] == ""
    assert reasons["surely-small"].startswith("band_gap 0.20 +- 0.20 eV (composition_model): P(")
    assert reasons["wide"] == ""
    assert "gap 0.90 +- 0.30 eV (composition_model)" in ranked.loc["coin-flip", "why"]
    stricter = rank_candidates(_gap_rows(), Filters(min_band_gap=1.0, min_p_band_gap=0.5))
    assert stricter.set_index("id").loc["coin-flip", "excluded_reason"].endswith("< 0.5")


def test_redox_active_elements_remove_a_row_with_the_reason():
    filters = Filters(redox_elements=frozenset({"Fe", "Co"}))
    reasons = rank_candidates(_gap_rows(), filters).set_index("id")["excluded_reason"]
    assert reasons["redox"].startswith("redox-active transition metal Fe (")
    assert (reasons.drop("redox") == "").all()


def test_p_fast_ranks_by_the_probability_and_a_barrier_moves_it():
    frame = _gap_rows()
    frame["p_fast"] = [0.2, 0.6, 0.4, 0.1, 0.3]
    ranked = rank_candidates(frame, Filters(), score="p_fast")
    assert list(ranked["id"]) == ["coin-flip", "surely-small", "redox", "known-small", "wide"]
    assert ranked.iloc[0]["why"].startswith("rank 1/5 by score 0.60 (p_fast)")
    assert "P(fast) 0.60" in ranked.iloc[0]["why"]
    # barriers: a low one raises the probability, a high one lowers it, relative to 0.3 eV
    frame["bvse_e3d_ev"] = [0.1, 0.9, 0.3, math.nan, math.nan]
    moved = rank_candidates(frame, Filters(), "p_fast", 0.0, 2.0, 0.3).set_index("id")
    assert moved.loc["known-small", "score"] > 0.2 and moved.loc["coin-flip", "score"] < 0.6
    assert moved.loc["surely-small", "score"] == pytest.approx(0.4)  # at the reference
    assert moved.loc["redox", "score"] < 0.3  # unchecked: counts as the highest barrier
    assert "BVSE barrier x 2 per eV" in moved.loc["redox", "why"]
    unmoved = rank_candidates(frame, Filters(), "p_fast", 0.0, 0.0, 0.3)
    assert list(unmoved["id"]) == list(ranked["id"])


def test_why_gives_the_stability_method_and_why_a_barrier_is_missing():
    frame = _gap_rows()
    frame["e_above_hull"] = [0.01, math.nan, math.nan, math.nan, math.nan]
    frame["stability_method"] = ["chgnet_hull", "none: incomplete hull", "", "", ""]
    frame["hull_warning"] = ["no ternary phase", "", "", "", ""]
    frame["bvse_method"] = ["none: no Li in the structure", "not checked: below the best 1",
                            "", "", ""]  # fmt: skip
    why = rank_candidates(frame, Filters()).set_index("id")["why"]
    assert (
        "E_hull 0.010 eV/atom (chgnet_hull; its hull lacks: no ternary phase)" in why["known-small"]
    )
    assert "BVSE: none: no Li in the structure" in why["known-small"]
    assert "E_hull unknown (none: incomplete hull)" in why["coin-flip"]
    assert "BVSE" not in why["coin-flip"]


def test_p_fast_is_weighed_by_the_chance_that_the_gap_reaches_the_minimum():
    """With a minimum gap, the score is P(fast) x P(gap >= minimum): a row kept on an
    uncertain gap estimate no longer outranks one whose gap is known to be wide."""
    from scipy.stats import norm

    frame = _gap_rows()
    frame["p_fast"] = [0.2, 0.6, 0.4, 0.1, 0.3]
    ranked = rank_candidates(frame, Filters(min_band_gap=1.0), score="p_fast").set_index("id")
    p_gap = norm.sf(1.0, loc=0.9, scale=0.3)
    assert ranked.loc["coin-flip", "p_band_gap"] == pytest.approx(p_gap)
    assert ranked.loc["coin-flip", "score"] == pytest.approx(0.6 * p_gap)
    assert ranked.loc["redox", "score"] == pytest.approx(0.3)  # a known 3.5 eV gap: x 1
    assert ranked.loc["redox", "rank"] < ranked.loc["coin-flip", "rank"]
    assert "(p_fast x P(gap >= 1 eV))" in ranked.loc["coin-flip", "why"]
    assert "P(gap above the minimum) 0.37" in ranked.loc["coin-flip", "why"]
