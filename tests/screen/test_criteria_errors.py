"""A composition the criteria cannot read is reported by id, not silently left empty."""

from __future__ import annotations

import logging
import math

import pandas as pd
import pytest

from miscreen import schema as S
from miscreen.screen.criteria import LI_FRACTION, SUPPLY_RISK, add_criteria


def test_unreadable_compositions_are_warned_about_by_id(caplog: pytest.LogCaptureFixture):
    frame = pd.DataFrame(
        {
            S.ID: ["good", "unknown-element", "all-zero", "bad-charge"],
            S.COMPOSITION: ["Li2O", "Xx2Li", "Li0O0", "Li2O+"],
            S.STRUCTURE: [None] * 4,
            S.Z: [math.nan] * 4,
        }
    )
    with caplog.at_level(logging.WARNING, logger="miscreen.screen.criteria"):
        out = add_criteria(frame).set_index(S.ID)
    assert out.loc["good", LI_FRACTION] == pytest.approx(2 / 3)
    assert out.loc["good", SUPPLY_RISK] > 0
    bad = ["unknown-element", "all-zero", "bad-charge"]
    assert out.loc[bad, [LI_FRACTION, SUPPLY_RISK]].isna().all().all()
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 3
    for rid, comp, error in zip(
        bad,
        ["Xx2Li", "Li0O0", "Li2O+"],
        ["AttributeError", "ZeroDivisionError", "ValueError"],
        strict=True,
    ):
        assert any(f"row {rid}: composition {comp!r}" in m and error in m for m in warned)


def test_readable_compositions_give_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    frame = pd.DataFrame({S.ID: ["a", "b"], S.COMPOSITION: ["Li3PS4", "Li7La3Zr2O12"]})
    with caplog.at_level(logging.WARNING, logger="miscreen.screen.criteria"):
        out = add_criteria(frame)
    assert out[SUPPLY_RISK].notna().all()
    assert not caplog.records
