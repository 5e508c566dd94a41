"""suggest_batch on hand-made pools: measured rows, diversity, intervals and reasons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from miscreen.suggest import MEAN, SD, WHY, nearest_measured, suggest_batch

# Li-P-S holds the three best predictions; Li-Ge-P-S and Li-La-Zr-O follow.
POOL = pd.DataFrame(
    {
        "id": ["lps1", "lps2", "lps3", "lgps", "llzo", "lco", "old"],
        "composition": [
            "Li3PS4",
            "Li7P3S11",
            "Li4P2S6",
            "Li10GeP2S12",
            "Li7La3Zr2O12",
            "LiCoO2",
            "Li6PS5Cl",
        ],
        MEAN: [-2.0, -2.1, -2.2, -2.3, -3.5, -6.0, -1.0],
        SD: [0.5, 0.5, 0.5, 0.4, 1.0, 2.0, 0.1],
    }
)
MEASURED = pd.DataFrame(
    {
        "id": ["old", "m2"],
        "composition": ["Li6PS5Cl", "Li2O"],
        "log10_sigma": [-2.5, -9.0],
    }
)


@pytest.mark.parametrize("acq", ["mei", "mli", "ucb", "ei", "mu", "random"])
def test_never_suggests_a_measured_row(acq: str) -> None:
    # "old" has the best prediction of all, but it was measured
    out = suggest_batch(POOL, 6, acq, best_measured=-2.5, measured=MEASURED, diversity="none")
    assert "old" not in set(out["id"])
    assert len(out) == 6
    flagged = POOL.assign(measured=POOL["id"].isin(["old", "lps1"]))
    out = suggest_batch(flagged, 6, acq, best_measured=-2.5, diversity="none")
    assert not {"old", "lps1"} & set(out["id"])
    out = suggest_batch(POOL, 6, acq, best_measured=-2.5, measured=["old"], diversity="none")
    assert "old" not in set(out["id"])


def test_one_suggestion_per_chemical_system() -> None:
    out = suggest_batch(POOL, 4, "mei", best_measured=-2.5, measured=["old"])
    assert list(out["id"]) == ["lps1", "lgps", "llzo", "lco"]
    assert out["chemsys"].is_unique
    assert list(out["rank"]) == [1, 2, 3, 4]
    free = suggest_batch(POOL, 4, "mei", best_measured=-2.5, measured=["old"], diversity="none")
    assert list(free["id"]) == ["lps1", "lps2", "lps3", "lgps"]


def test_fewer_rows_when_the_systems_run_out() -> None:
    out = suggest_batch(POOL, 10, "mli", best_measured=-2.5, measured=["old"])
    assert len(out) == 4


def test_suggestions_carry_interval_value_and_reason() -> None:
    out = suggest_batch(POOL, 2, "mli", best_measured=-2.5, measured=MEASURED)
    top = out.iloc[0]
    assert top["id"] == "lps1"
    assert top["acquisition_value"] == pytest.approx(0.8413, abs=1e-4)  # one sd above
    assert top["lower"] < top[MEAN] < top["upper"]
    assert top["upper"] - top[MEAN] == pytest.approx(1.2816 * 0.5, abs=1e-3)  # 80 % interval
    assert "P(log10 sigma > best measured -2.50) = 0.84" in top[WHY]
    assert "only pick in Li-P-S" in top[WHY]
    assert top["nearest_measured_id"] == "old"  # Li6PS5Cl is the closest measured material
    assert "nearest measured: Li6PS5Cl" in top[WHY]


def test_an_interval_in_the_pool_is_kept() -> None:
    pool = POOL.assign(lower=POOL[MEAN] - 3, upper=POOL[MEAN] + 1)
    out = suggest_batch(pool, 1, "mei", best_measured=-2.5, measured=["old"])
    assert out.loc[0, "lower"] == -5.0 and out.loc[0, "upper"] == -1.0


def test_bad_requests_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown acquisition function 'best'; choose one of"):
        suggest_batch(POOL, 2, "best", best_measured=-2.5)
    with pytest.raises(ValueError, match="unknown diversity 'family'"):
        suggest_batch(POOL, 2, "mei", best_measured=-2.5, diversity="family")
    with pytest.raises(ValueError, match="lacks column"):
        suggest_batch(POOL.drop(columns=[SD]), 2, "mei", best_measured=-2.5)
    bad = POOL.assign(composition=["Li3PS4", "Xx2", *POOL["composition"][2:]])
    with pytest.raises(ValueError, match="id 'lps2'"):
        suggest_batch(bad, 2, "mei", best_measured=-2.5)


def test_nearest_measured_by_fractions_and_by_features() -> None:
    sugg = POOL.iloc[[0, 4]].reset_index(drop=True)
    near = nearest_measured(sugg, MEASURED)
    assert list(near["nearest_measured_id"]) == ["old", "m2"]  # LLZO: Li and O like Li2O
    assert list(near["nearest_measured_log10_sigma"]) == [-2.5, -9.0]
    dist = near["nearest_measured_distance"]
    assert np.all((dist >= 0) & (dist <= 1))
    same = nearest_measured(POOL.iloc[[6]], MEASURED)
    assert same["nearest_measured_distance"].iloc[0] == 0.0
    feats = pd.DataFrame(
        {"f1": [0.0, 10.0, 0.5, 9.0], "f2": [1.0, 0.0, 1.0, 0.0]},
        index=["old", "m2", "lps1", "llzo"],
    )
    near = nearest_measured(sugg, MEASURED, features=feats)
    assert list(near["nearest_measured_id"]) == ["old", "m2"]
