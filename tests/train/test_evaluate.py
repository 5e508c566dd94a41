"""Metrics that read censored labels ("below 1e-10 S/cm") as bounds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from miscreen import schema as S
from miscreen.train.evaluate import bound_aware_coverage, bound_aware_mae


def _rows() -> pd.DataFrame:
    # a measured row, a censored row predicted below its bound, one predicted above it
    return pd.DataFrame(
        {
            S.TARGET: [-3.0, -15.0, -15.0],
            S.CENSORED: [False, True, True],
            S.CENSOR_BOUND: [np.nan, -10.0, -10.0],
            S.PRED: [-4.0, -11.0, -8.0],
            S.LOWER: [-5.0, -12.0, -9.5],
            S.UPPER: [-2.0, -9.0, -6.0],
        }
    )


def test_bound_aware_mae_counts_a_censored_row_at_or_below_its_bound_as_exact():
    assert bound_aware_mae(_rows()) == pytest.approx((1.0 + 0.0 + 2.0) / 3)


def test_bound_aware_coverage_needs_the_interval_to_reach_the_bound():
    # measured row inside; first censored interval reaches -10, the second stops at -9.5
    assert bound_aware_coverage(_rows()) == pytest.approx(2 / 3)
    assert np.isnan(bound_aware_coverage(_rows().iloc[:0]))


def test_p_fast_metrics_score_the_probability_against_the_fast_rows():
    from miscreen.train.evaluate import p_fast_metrics

    rows = pd.DataFrame({S.TARGET: [-3.0, -5.0, -10.0, -2.0], S.P_FAST: [0.9, 0.2, 0.0, 0.4]})
    got = p_fast_metrics(rows)
    assert got["test_p_fast_brier"] == pytest.approx((0.01 + 0.04 + 0 + 0.36) / 4)
    assert got["test_p_fast_brier_base_rate"] == pytest.approx(0.25)  # half the rows are fast
    assert got["test_fast_share_where_p_fast_ge_0.5"] == 1.0
    assert got["test_p_fast_ge_0.5_n"] == 1
