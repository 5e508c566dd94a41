"""The label-free prior: its components from a composition, the rank score, the cold start."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from miscreen import schema as S
from miscreen.suggest.next_round import suggest_next
from miscreen.suggest.prior import (
    BARRIER,
    LI_FRACTION,
    POLARIZABILITY,
    cold_start,
    composition_components,
    polarizability,
    prior_components,
    prior_score,
    weight_by_prior,
)
from miscreen.suggest.selection import suggest_batch


def test_softer_anions_are_more_polarizable() -> None:
    # the order the physics expects: I, Se, Br, S > Cl > N > O > F
    pol = {el: polarizability(el) for el in ("I", "Se", "Br", "S", "Cl", "O", "F")}
    assert min(pol["I"], pol["Se"], pol["Br"], pol["S"]) > pol["Cl"] > pol["O"] > pol["F"]


def test_components_of_one_composition() -> None:
    pol, li = composition_components("Li10GeP2S12")
    assert pol == pytest.approx(polarizability("S"))  # P and Ge are cations here
    assert li == pytest.approx(10 / 25)
    pol, li = composition_components("Li3OCl")  # an amount-weighted mixed-anion mean
    assert pol == pytest.approx((polarizability("O") + polarizability("Cl")) / 2)
    assert li == pytest.approx(0.6)
    pol, li = composition_components("LiAl")
    assert np.isnan(pol) and li == pytest.approx(0.5)


def test_the_prior_ranks_a_sulfide_above_an_oxide_and_needs_no_label() -> None:
    comps = ["Li3PS4", "Li3PO4", "LiAlO2", "LiI"]
    table = prior_components(comps)
    assert list(table.columns) == [POLARIZABILITY, LI_FRACTION, BARRIER]
    assert table[BARRIER].isna().all()
    score = prior_score(table)
    assert score[0] > score[1] > score[2]  # same Li fraction: S over O; then less Li
    assert np.all((score >= 0) & (score <= 1))


def test_a_barrier_counts_where_known_and_lower_is_better() -> None:
    table = prior_components(["Li3PS4", "Li3PS4", "Li3PS4"], barriers=[0.2, 0.8, np.nan])
    score = prior_score(table)
    assert score[0] > score[1]
    # the row without a barrier averages the other components only
    assert score[2] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="2 barriers for 3 compositions"):
        prior_components(["Li3PS4"] * 3, barriers=[0.2, 0.3])


def test_a_row_with_nothing_known_scores_one_half() -> None:
    table = pd.DataFrame({POLARIZABILITY: [np.nan], LI_FRACTION: [np.nan], BARRIER: [np.nan]})
    assert prior_score(table).tolist() == [0.5]
    with pytest.raises(ValueError, match="lack column"):
        prior_score(table.drop(columns=[BARRIER]))


def test_cold_start_lasts_until_a_fast_conductor_is_measured() -> None:
    assert cold_start(np.array([-6.0, -4.5]), -3.0)
    assert not cold_start(np.array([-6.0, -2.9]), -3.0)
    assert not cold_start(np.array([-3.0]), -3.0)  # the threshold itself counts as fast


# The model (fitted on poor oxides) rates the oxides highest; the prior rates the sulfide.
COLD_POOL = pd.DataFrame(
    {
        "id": ["lps", "llzo", "lco", "lno"],
        "composition": ["Li3PS4", "Li7La3Zr2O12", "LiCoO2", "LiNbO3"],
        "predicted_log10_sigma": [-7.0, -4.0, -5.0, -4.5],
        "predicted_sd": [0.5, 0.5, 0.5, 0.5],
    }
)


def test_the_cold_start_ranks_by_the_prior_until_a_fast_conductor_is_measured() -> None:
    cold = suggest_batch(COLD_POOL, 2, "mei", best_measured=-5.5, physics_prior=True)
    assert cold["id"].tolist()[0] == "lps"
    assert (cold["acquisition"] == "prior").all()
    assert "cold start" in cold["why"].iloc[0] and "anion polarizability" in cold["why"].iloc[0]
    # without the prior, or once a fast conductor is measured: the acquisition decides
    for kwargs in ({"physics_prior": False}, {"physics_prior": True, "best_measured": -2.5}):
        args = {"best_measured": -5.5, **kwargs}
        warm = suggest_batch(COLD_POOL, 2, "mei", **args)
        assert warm["id"].tolist() == ["llzo", "lno"]
        assert (warm["acquisition"] == "mei").all()


def test_a_barrier_column_enters_the_prior() -> None:
    pool = COLD_POOL.assign(composition="Li3PS4", barrier=[0.9, 0.2, 0.5, np.nan])
    out = suggest_batch(pool, 4, "mei", best_measured=-5.5, physics_prior=True, diversity="none")
    assert out["id"].iloc[0] == "llzo" and out["id"].iloc[-1] == "lps"
    assert "BVSE barrier 0.20 eV" in out["why"].iloc[0]


def test_the_screen_runs_bvse_column_enters_the_prior() -> None:
    """A screened run's candidates carry BVSE barriers (``bvse_e3d_ev``) for the best rows:
    the prior reads them there."""
    pool = COLD_POOL.assign(composition="Li3PS4", **{S.BVSE_E3D: [0.9, 0.2, 0.5, np.nan]})
    out = suggest_batch(pool, 4, "mei", best_measured=-5.5, physics_prior=True, diversity="none")
    assert out["id"].iloc[0] == "llzo" and out["id"].iloc[-1] == "lps"
    assert "BVSE barrier 0.20 eV" in out["why"].iloc[0]


def test_a_campaign_round_says_it_was_ranked_by_the_prior() -> None:
    ranked = COLD_POOL.assign(rank=range(1, 5), lower=-9.0, upper=0.0)
    measured = pd.DataFrame({"id": ["m1"], "composition": ["Li2O"], "log10_sigma": [-9.0]})
    out = suggest_next(ranked, measured, [], {}, 2, "mli", "chemsys", 0.8, seed=0)
    assert out.round.acquisition == "prior" and out.picks["id"].iloc[0] == "lps"
    off = suggest_next(
        ranked, measured, [], {}, 2, "mli", "chemsys", 0.8, seed=0, physics_prior=False
    )
    assert off.round.acquisition == "mli"


def test_weighting_multiplies_mli_and_ei_by_the_prior_only() -> None:
    values = np.array([0.5, 0.2, 0.0])
    prior = np.array([0.2, 1.0, 0.7])
    assert weight_by_prior("mli", values, prior).tolist() == pytest.approx([0.1, 0.2, 0.0])
    assert weight_by_prior("ei", values, prior).tolist() == pytest.approx([0.1, 0.2, 0.0])
    for name in ("mei", "ucb", "mu", "random"):  # scores that may be < 0 or mean no belief
        assert weight_by_prior(name, values, prior).tolist() == values.tolist()
    with pytest.raises(ValueError, match="scores >= 0"):
        weight_by_prior("mli", np.array([-0.1]), np.array([0.5]))
    with pytest.raises(ValueError, match=r"\(2,\) scores for \(3,\) prior"):
        weight_by_prior("mli", values[:2], prior)


# Model tie after the cold start: the same mean and spread for an oxide and a sulfide.
TIED_POOL = pd.DataFrame(
    {
        "id": ["llzo", "lps"],
        "composition": ["Li7La3Zr2O12", "Li3PS4"],
        "predicted_log10_sigma": [-3.0, -3.0],
        "predicted_sd": [0.5, 0.5],
    }
)


def test_after_the_cold_start_the_prior_weighs_mli() -> None:
    on = suggest_batch(TIED_POOL, 2, "mli", best_measured=-2.5, physics_prior=True)
    assert on["id"].tolist() == ["lps", "llzo"]  # physics prefers the sulfide
    assert (on["acquisition"] == "mli").all()
    raw = on["acquisition_value_without_prior"]
    assert raw.iloc[0] == pytest.approx(raw.iloc[1])  # the model alone cannot tell them apart
    assert on["acquisition_value"].tolist() == pytest.approx((raw * on["prior_score"]).tolist())
    assert "x physics prior" in on["why"].iloc[0]
    off = suggest_batch(TIED_POOL, 2, "mli", best_measured=-2.5, physics_prior=False)
    assert off["id"].tolist() == ["llzo", "lps"]  # a tie: the earlier row
    assert "acquisition_value_without_prior" not in off.columns
    assert "prior" not in off["why"].iloc[0]
    mei = suggest_batch(TIED_POOL, 2, "mei", best_measured=-2.5, physics_prior=True)
    assert mei["id"].tolist() == ["llzo", "lps"]  # mei is not weighted


def test_a_pick_without_a_listed_anion_says_so_in_words() -> None:
    """Li3As holds none of the prior's anions: its why names that part as missing (never
    'nan'), in the cold start and in the weighted acquisition alike."""
    pool = COLD_POOL.assign(composition=["Li3As", "Li7La3Zr2O12", "LiCoO2", "LiNbO3"])
    for best in (-5.5, -2.5):  # the cold start, then mli weighted by the prior
        out = suggest_batch(pool, 4, "mli", best_measured=best, physics_prior=True)
        why = out.set_index("id").loc["lps", "why"]
        assert "no anion polarizability (none of N O F" in why and "nan" not in why
        assert "anion polarizability 0.80 A^3" in out.set_index("id").loc["llzo", "why"]  # O
