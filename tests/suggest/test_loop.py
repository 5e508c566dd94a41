"""The loop closes: a suggested material, measured and added through ``data.extra``, is
trained on, left out of the next screen, never suggested again, and logged in the round
where it came back."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from miscreen import schema as S
from miscreen.catalog import RunCatalog
from miscreen.cli import app
from miscreen.suggest import read_campaign
from tests.conftest import small_config

CANDIDATES = """
  - kind: pymatgen
  - kind: csv
    path: {root}/cands.csv
"""
SCREEN = "{top_k: 5, exclude_known: true}"


def invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_measured_suggestions_come_back_as_training_data(tmp_path):
    (tmp_path / "cands.csv").write_text(
        "id,composition\nc1,Li6PS5Cl\nc2,Li3InCl6\nc3,Li7La3Zr2O12\nc4,Li2ZrCl6\n"
    )
    candidates = CANDIDATES.format(root=tmp_path)
    first = tmp_path / "first.yaml"
    first.write_text(small_config(tmp_path, "loop", candidates, SCREEN))
    invoke("run", str(first))
    invoke("suggest", str(first), "--batch", "2")
    run = RunCatalog(tmp_path / "results" / "loop")
    picked = pd.read_csv(run.suggestions)[S.ID].astype(str).tolist()
    measured_id = picked[0]
    ranked = pd.read_csv(run.candidates_csv).set_index(S.ID)
    composition = ranked.loc[measured_id, S.COMPOSITION]
    extra = tmp_path / "measured.csv"
    extra.write_text(f"id,composition,log10_sigma\n{measured_id},{composition},-3.0\n")

    second = tmp_path / "second.yaml"
    second.write_text(small_config(tmp_path, "loop", candidates, SCREEN, f"{{extra: [{extra}]}}"))
    invoke("run", str(second))
    known = pd.read_parquet(run.known_materials)
    assert measured_id in set(known[S.ID].astype(str))
    ranked = pd.read_csv(run.candidates_csv).set_index(S.ID)
    assert ranked.loc[measured_id, S.EXCLUDED].startswith("already measured")
    invoke("suggest", str(second), "--batch", "2")
    assert measured_id not in set(pd.read_csv(run.suggestions)[S.ID].astype(str))
    rounds = read_campaign(run.campaign)
    assert rounds[0].measured == {} and rounds[1].measured == {measured_id: -3.0}
    assert rounds[1].n_measured == rounds[0].n_measured + 1
