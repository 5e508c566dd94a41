"""Small hand-made structures and records for the featurize tests."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from miscreen import schema as S


def record(id_: str, structure: Structure | None, composition: str | None = None) -> dict:
    """A records row for ``structure`` (or a composition-only row)."""
    lat = structure.lattice if structure is not None else None
    return {
        S.ID: id_,
        S.SOURCE: "test",
        S.FORMULA: composition or structure.composition.reduced_formula,
        S.COMPOSITION: composition or structure.composition.formula,
        S.STRUCTURE: structure.to_json() if structure is not None else None,
        S.SPACEGROUP: 225.0,
        **dict(zip(S.LATTICE, (*lat.abc, *lat.angles) if lat else (math.nan,) * 6, strict=True)),
        S.Z: math.nan,
    }


def rocksalt(li_occupancy: float = 1.0) -> Structure:
    """LiCl rock salt (a = 5.14 A) with Li sites filled to ``li_occupancy``."""
    fcc = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    shifted = [[(x + 0.5) % 1.0 for x in p] for p in fcc]
    species = [{"Li": li_occupancy}] * 4 + ["Cl"] * 4
    return Structure(Lattice.cubic(5.14), species, fcc + shifted)


def li2o() -> Structure:
    """Antifluorite Li2O (a = 4.61 A)."""
    fcc = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    li = [[x, y, z] for x in (0.25, 0.75) for y in (0.25, 0.75) for z in (0.25, 0.75)]
    return Structure(Lattice.cubic(4.61), ["O"] * 4 + ["Li"] * 8, fcc + li)


@pytest.fixture
def records() -> pd.DataFrame:
    """Three ordered, one disordered and one composition-only record."""
    rows = [
        record("licl", rocksalt()),
        record("licl-half", rocksalt(0.5)),
        record(
            "li2o",
            Structure.from_spacegroup(
                "Fm-3m", Lattice.cubic(4.61), ["O", "Li"], [[0, 0, 0], [0.25, 0.25, 0.25]]
            ),
        ),
        record("li3ps4-comp", None, composition="Li3PS4"),
    ]
    return pd.DataFrame(rows)
