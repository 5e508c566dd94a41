"""Candidates that are measured materials are recognised (formula, or structure match
between an ordered cell and a disordered CIF); duplicates across snapshots are found
whatever the row order."""

from __future__ import annotations

import json

import pandas as pd
from pymatgen.core import Lattice, Structure

from miscreen import schema as S
from miscreen.screen import duplicate_of
from miscreen.screen.known import match, parse_known


def li2o(occupancy: float = 1.0) -> Structure:
    li = {"Li": occupancy} if occupancy < 1 else "Li"
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(4.61), [li, "O"], [[0.25, 0.25, 0.25], [0, 0, 0]]
    )


def known_table(structure: Structure, composition: str) -> pd.DataFrame:
    row = {
        S.ID: "k1",
        S.SOURCE: "obelix",
        S.COMPOSITION: composition,
        S.STRUCTURE: json.dumps(structure.as_dict()),
        S.TARGET: -7.5,
    }
    return pd.DataFrame([row])


def test_same_reduced_formula_is_known():
    known = parse_known(known_table(li2o(), "Li2O"))
    by_formula = {k.formula: [k] for k in known}
    found = match("Li4O2", None, known, by_formula)
    assert found.startswith("obelix k1 Li2O (same reduced formula") and "-7.50" in found
    assert match("Li2S", None, known, by_formula) == ""


def test_ordered_cell_matches_a_disordered_cif_of_the_same_phase():
    disordered = li2o(occupancy=0.98)  # Li1.96O: another reduced formula
    known = parse_known(known_table(disordered, disordered.composition.formula))
    by_formula = {k.formula: [k] for k in known}
    ordered = li2o()
    ordered.make_supercell([2, 1, 1])
    found = match("Li2O", json.dumps(ordered.as_dict()), known, by_formula)
    assert "StructureMatcher match" in found
    other = Structure.from_spacegroup(  # same formula family, another phase (antifluorite vs
        "P6_3mc",
        Lattice.hexagonal(3.3, 5.3),
        ["Li", "O"],
        [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.38]],
    )  # a wurtzite-like LiO cell: different composition, never compared
    assert match("LiO", json.dumps(other.as_dict()), known, by_formula) == ""


def test_duplicates_keep_the_row_with_a_known_energy_whatever_the_order():
    base = {S.FORMULA: "Li3N", S.SPACEGROUP: 191, "nsites": 4, "a": 3.65, "b": 3.65}
    base |= {"c": 3.88, "alpha": 90, "beta": 90, "gamma": 120}
    rows = [
        {**base, S.ID: "mbd-1", S.E_HULL: None},
        {**base, S.ID: "mp-9", S.E_HULL: 0.0, "a": 3.66},  # within 2 % per atom
        {**base, S.ID: "mp-2", S.E_HULL: 0.0, S.SPACEGROUP: 194},  # another phase
    ]
    for order in ([0, 1, 2], [2, 1, 0], [1, 0, 2]):
        frame = pd.DataFrame([rows[i] for i in order])
        twins = dict(zip(frame[S.ID], duplicate_of(frame), strict=True))
        assert twins == {"mbd-1": "mp-9", "mp-9": "", "mp-2": ""}


def _duplicates_row_by_row(frame: pd.DataFrame) -> dict[str, str]:
    """The rule of :func:`duplicate_of`, one row at a time: walk the rows (known energy
    first, then by id) and match each to the first kept row of its formula and space group
    whose volume per atom is within 2 %."""
    import math

    def volume(r: dict) -> float:
        cos = [math.cos(math.radians(r[k])) for k in ("alpha", "beta", "gamma")]
        root = 1 - sum(c * c for c in cos) + 2 * cos[0] * cos[1] * cos[2]
        return r["a"] * r["b"] * r["c"] * math.sqrt(root) if root > 0 else math.nan

    rows = sorted(frame.to_dict("records"), key=lambda r: (pd.isna(r[S.E_HULL]), r[S.ID]))
    kept: dict[tuple, list[tuple[float, str]]] = {}
    twins = {}
    for r in rows:
        per_atom = volume(r) / r["nsites"] if r["nsites"] > 0 else math.nan
        if not math.isfinite(per_atom):
            twins[r[S.ID]] = ""
            continue
        group = kept.setdefault((r[S.FORMULA], r[S.SPACEGROUP]), [])
        twin = next((i for v, i in group if abs(per_atom - v) <= 0.02 * v), "")
        twins[r[S.ID]] = twin
        if not twin:
            group.append((per_atom, r[S.ID]))
    return twins


def test_duplicates_match_the_row_by_row_rule_on_a_large_mixed_table():
    import numpy as np

    rng = np.random.default_rng(3)
    n = 3000
    frame = pd.DataFrame(
        {
            S.ID: [f"id-{i:05d}" for i in rng.permutation(n)],
            S.FORMULA: rng.choice(["Li3N", "Li2S", "LiCl", "Li3PS4"], n),
            S.SPACEGROUP: rng.choice([191, 225, 62], n),
            "nsites": rng.choice([0, 4, 8], n, p=[0.05, 0.5, 0.45]),
            "a": np.where(rng.random(n) < 0.05, np.nan, rng.uniform(3.5, 4.5, n)),
            "b": 4.0,
            "c": 4.0,
            "alpha": 90.0,
            "beta": 90.0,
            "gamma": rng.choice([90.0, 120.0, 179.9999999], n),
            S.E_HULL: np.where(rng.random(n) < 0.5, np.nan, 0.0),
        }
    )
    expected = _duplicates_row_by_row(frame)
    found = dict(zip(frame[S.ID], duplicate_of(frame), strict=True))
    assert sum(1 for v in expected.values() if v) > 1000  # most rows have a twin
    assert found == expected
