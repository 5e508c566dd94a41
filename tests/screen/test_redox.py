"""The redox-active filter names the element and says why a row goes."""

from __future__ import annotations

import pandas as pd

from miscreen import schema as S
from miscreen.screen.redox import REDOX_ACTIVE, redox_elements, redox_reason, redox_table


def test_names_the_redox_active_elements():
    assert redox_elements("LiFePO4") == ("Fe",)
    assert redox_elements("Li2MnCoO4") == ("Co", "Mn")
    assert redox_elements("Li7La3Zr2O12") == ()  # Zr and La keep one oxidation state
    assert redox_elements("not a formula") == ()


def test_the_active_set_can_be_chosen():
    assert redox_elements("Li7La3Zr2O12", active={"Zr"}) == ("Zr",)
    assert "Ti" in REDOX_ACTIVE


def test_table_gives_the_elements_and_a_reason_per_row():
    records = pd.DataFrame({S.COMPOSITION: ["Li3PS4", "LiTi2(PO4)3", "LiCoO2"]}, index=[5, 6, 7])
    table = redox_table(records)
    assert list(table.index) == [5, 6, 7]
    assert table[S.REDOX_ACTIVE].tolist() == ["", "Ti", "Co"]
    assert table.at[5, S.EXCLUDED] == ""
    assert "Ti" in table.at[6, S.EXCLUDED] and "redox" in table.at[6, S.EXCLUDED]
    assert redox_reason(["V", "Cr"]).startswith("redox-active transition metals Cr, V")
