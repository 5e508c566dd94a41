"""Disorder handling: occupancy-weighted counts and statistics, split sites, no-structure rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from miscreen.featurize import featurize_records
from miscreen.featurize.context import build_context
from tests.featurize.conftest import record, rocksalt


def test_half_filled_li_sites_count_half(records: pd.DataFrame) -> None:
    feats, fails, _ = featurize_records(records, "full")
    assert fails.empty
    ordered, half = feats.loc["licl"], feats.loc["licl-half"]
    # 4 Li sites x 0.5 + 4 Cl = 2 Li of 6 atoms; every Li site half filled
    assert half["li:li_fraction"] == pytest.approx(2 / 6)
    assert ordered["li:li_fraction"] == pytest.approx(0.5)
    assert half["li:li_site_occupancy"] == pytest.approx(0.5)
    assert half["struct:vacancy_fraction"] == pytest.approx(0.25)
    assert ordered["struct:vacancy_fraction"] == pytest.approx(0.0)
    # occupancy-weighted Li neighbours within 4 A: 12 Li sites at 3.63 A, each half filled
    assert ordered["li:li_li_cn_4A"] == pytest.approx(12.0)
    assert half["li:li_li_cn_4A"] == pytest.approx(6.0)
    # geometry of the Li site is unchanged by its occupancy
    assert half["li:li_anion_nn_mean"] == pytest.approx(5.14 / 2)
    assert half["li:li_cn_mean"] == pytest.approx(ordered["li:li_cn_mean"])
    assert ordered["li:li_cn_mean"] == pytest.approx(6.0, abs=0.05)
    assert half["cell:li_per_volume"] == pytest.approx(ordered["cell:li_per_volume"] / 2)


def test_split_sites_are_not_counted_as_neighbours() -> None:
    s = Structure(
        Lattice.cubic(6.0),
        [{"Li": 0.5}, {"Li": 0.5}, "Cl"],
        [[0, 0, 0], [0.08, 0, 0], [0.5, 0.5, 0.5]],
    )
    ctx = build_context(s)
    between = ((ctx.center == 0) & (ctx.neighbor == 1)) | ((ctx.center == 1) & (ctx.neighbor == 0))
    assert ctx.dist[between].min() > 5.0  # the 0.48 A pair (alternatives) is gone, images stay
    assert ctx.li.sum() == pytest.approx(1.0)


def test_structure_features_are_nan_without_structure(records: pd.DataFrame) -> None:
    feats, _, schema = featurize_records(records, "full")
    row = feats.loc["li3ps4-comp"]
    struct_cols = [c for c in schema.names if c.startswith(("struct:", "li:"))]
    other = [c for c in schema.names if c.startswith(("comp:", "ion:"))]
    assert row[struct_cols].isna().all()
    assert row[other].notna().all()
    assert row["ion:anion_charge_mean"] == pytest.approx(-2.0)


def test_oxidation_states_given_in_structure_are_used() -> None:
    s = rocksalt()
    s.add_oxidation_state_by_element({"Li": 1, "Cl": -1})
    assert build_context(s).oxidation.method == "given"
    assert build_context(rocksalt()).oxidation.method in {"pymatgen", "electronegativity"}


def test_vacancy_dummy_species_count_as_vacancy() -> None:
    feats, fails, _ = featurize_records(pd.DataFrame([record("x", rocksalt(0.75))]), "full")
    assert fails.empty
    assert feats.loc["x", "li:li_site_occupancy"] == pytest.approx(0.75)
    assert np.isfinite(feats.loc["x", "struct:config_entropy"])
    assert feats.loc["x", "struct:config_entropy"] > 0


def test_anion_packing_distinguishes_bcc_from_fcc() -> None:
    bcc = Structure(
        Lattice.cubic(4.0), ["S", "S", "Li"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.25, 0]]
    )
    feats, fails, _ = featurize_records(
        pd.DataFrame([record("bcc", bcc), record("fcc", rocksalt())]), "li_conductor"
    )
    assert fails.empty
    assert feats.loc["bcc", "li:anion_bcc_rmsd"] == pytest.approx(0.0, abs=1e-6)
    assert feats.loc["fcc", "li:anion_fcc_rmsd"] == pytest.approx(0.0, abs=1e-6)
    assert feats.loc["bcc", "li:anion_fcc_rmsd"] > 0.05
    assert feats.loc["fcc", "li:anion_bcc_rmsd"] > 0.05
