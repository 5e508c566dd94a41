"""Generated candidates that are known materials: a snapshot's phase (StructureMatcher on the
unrelaxed substituted cell), a measured material of the run, or an earlier candidate; the
plan drops them unless they are the parent."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pymatgen.util
import pytest
from pymatgen.core import Structure

from miscreen import schema as S
from miscreen.fetch.reference_rows import reference_rows
from miscreen.generate import hull, substitute
from miscreen.generate.duplicates import duplicates
from tests.conftest import SHARED

EXAMPLES = Path(pymatgen.util.__file__).parent / "structures"


@pytest.fixture(scope="module")
def refs():
    table = reference_rows(SHARED / "mp-2018" / "mp_2018_matminer.jsonl.gz", "mp-2018")
    li = table[table[S.COMPOSITION].str.contains("Li")]
    return hull.reference_phases(li.reset_index(drop=True), hull.ALL)


@pytest.fixture(scope="module")
def li2o_family() -> list[substitute.Generated]:
    parent = Structure.from_file(EXAMPLES / "Li2O.json")
    return substitute.explicit(parent, "p", {"O": ["S", "Se", "Te"]}).candidates


def test_a_substituted_cell_matching_a_snapshot_phase_is_a_duplicate(refs, li2o_family):
    found = duplicates(li2o_family, refs)
    by_sub = {c.substitution: found.get(c.id) for c in li2o_family}
    for sub in ("", "O->S", "O->Se"):  # antifluorite Li2O, Li2S, Li2Se are all in mp-2018
        what, hits = by_sub[sub]
        assert what.startswith("reference phase mp-") and hits
        assert all(refs.formula[refs.ids.index(h)] == what.split()[0] or h for h in hits)
    li2s = by_sub["O->S"][1]
    assert {refs.formula[refs.ids.index(h)] for h in li2s} == {"Li2S"}


def test_a_measured_material_and_a_repeated_candidate_are_duplicates(tmp_path, li2o_family):
    known = pd.DataFrame(
        {S.ID: ["m1"], S.SOURCE: ["obelix"], S.FORMULA: ["Li2Te"], S.COMPOSITION: ["Li2Te1"],
         S.STRUCTURE: [None], S.TARGET: [-5.0]}
    )  # fmt: skip
    path = tmp_path / "known.parquet"
    known.to_parquet(path)
    empty = hull.reference_phases(pd.DataFrame(columns=[S.ID, S.COMPOSITION, S.STRUCTURE]))
    again = substitute.Generated("again", "p", li2o_family[1].structure.copy(), "x", 0.1)
    found = duplicates([*li2o_family, again], empty, path)
    te = next(c for c in li2o_family if c.substitution == "O->Te")
    assert found[te.id][0].startswith("measured material obelix m1 Li2Te")
    assert found["again"] == (f"generated candidate {li2o_family[1].id}", [])
    assert li2o_family[0].id not in found  # nothing known about the parent here
