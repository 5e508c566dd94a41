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
