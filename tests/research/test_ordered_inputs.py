"""Helpers of the ordered-input study: which rows it samples, the ordered cells, the
bootstrap summary and its verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Composition, Lattice, Structure

from benchmarks.research.ordered_inputs import (
    ORDERED_SUFFIX,
    bootstrap_mean,
    is_disordered,
    ordered_records,
    sample_rows,
    summary,
    without_lgps_family,
)
from miscreen import schema as S
from miscreen.store.structure_json import structure_from_json, structure_to_json


def half_li_cell() -> Structure:
    """Rock-salt-like LiCl with Li half occupied on two sites of a doubled cell, Na on the
    other half (ordered: one Li, one Na)."""
    return Structure(
        Lattice.cubic(5.0),
        [{"Li": 0.5, "Na": 0.5}, {"Li": 0.5, "Na": 0.5}, "Cl", "Cl"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0, 0], [0, 0.5, 0]],
    )


def ordered_cell() -> Structure:
    return Structure(Lattice.cubic(4.0), ["Li", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def records() -> pd.DataFrame:
    return pd.DataFrame(
        {
            S.ID: ["a", "b", "c", "d"],
            S.SOURCE: ["obelix"] * 4,
            S.STRUCTURE: [structure_to_json(half_li_cell()), structure_to_json(ordered_cell()),
                          None, structure_to_json(half_li_cell())],
            S.TARGET: [-3.0, -4.0, -5.0, -6.0],
            S.CENSORED: [False, False, False, True],
        }
    )  # fmt: skip


def test_only_disordered_measured_rows_are_sampled() -> None:
    assert is_disordered(structure_to_json(half_li_cell()))
    assert not is_disordered(structure_to_json(ordered_cell()))
    assert not is_disordered(None)
    assert list(sample_rows(records(), 10, seed=0)[S.ID]) == ["a"]  # d is censored


def test_ordered_records_are_ordered_cells_under_their_own_id() -> None:
    out = ordered_records(records().iloc[:1])
    assert list(out[S.ID]) == [f"a{ORDERED_SUFFIX}"]
    cell = structure_from_json(out.iloc[0][S.STRUCTURE])
    assert cell.is_ordered
    assert cell.composition == Composition("LiNaCl2")


def test_bootstrap_mean_brackets_the_mean() -> None:
    values = np.random.default_rng(1).normal(0.5, 1.0, 200)
    out = bootstrap_mean(values, seed=0)
    assert out["mean"] == pytest.approx(values.mean())
    assert out["ci95"][0] < out["mean"] < out["ci95"][1]
    assert out["ci95"][1] - out["ci95"][0] < 0.5


def test_summary_calls_ordered_inputs_biased_low_only_when_they_are() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(-4, 1, 50)
    original = y + rng.normal(0, 0.1, 50)
    low = summary(y, original, original - 1.0, seed=0)
    assert low["difference_ordered_minus_original"]["mean"] == pytest.approx(-1.0)
    assert low["ordered_biased_low"]
    assert low["ordered_cell"]["mae"]["mean"] > low["original_cif"]["mae"]["mean"]
    same = summary(y, original, original + rng.normal(0, 0.1, 50), seed=0)
    assert not same["ordered_biased_low"]
    # lower, but the original is the one that was off: not a bias of the ordered cell
    assert not summary(y, y + 1.0, y + 0.2, seed=0)["ordered_biased_low"]


def test_the_lgps_family_is_never_studied() -> None:
    rows = pd.DataFrame(
        {
            S.ID: ["a", "b", "c", "d"],
            S.FAMILY: ["LGPS", "unknown", "unknown", "garnet"],
            S.COMPOSITION: ["Li10Si1P2S12", "Li10Ge1P2S12", "Li3P1S4", "Li7La3Zr2O12"],
        }
    )
    assert list(without_lgps_family(rows)[S.ID]) == ["c", "d"]
