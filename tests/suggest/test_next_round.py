"""Suggestions for a screened run: from its ranked candidates, never a measured material,
logged round by round, and shown in the report."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from miscreen import atomic_io
from miscreen import schema as S
from miscreen.catalog import RunCatalog
from miscreen.errors import UserError
from miscreen.pipeline.suggestion import write_suggestions
from miscreen.suggest import read_campaign
from miscreen.suggest.next_round import suggest_next


def test_suggestions_for_a_run_are_logged_and_reported(small_run, tmp_path):
    run = RunCatalog(shutil.copytree(small_run, tmp_path / "run"))
    picks = write_suggestions(run, 3, "mli", "chemsys", 0.8, seed=0)
    ranked = pd.read_parquet(run.candidates_parquet).dropna(subset=[S.RANK])
    measured = set(pd.read_parquet(run.known_materials)[S.ID].astype(str))
    assert 1 <= len(picks) <= 3
    assert set(picks[S.ID]) <= set(ranked[S.ID]) and not set(picks[S.ID]) & measured
    assert picks["chemsys"].is_unique
    assert picks["nearest_measured_id"].astype(str).isin(measured).all()
    assert pd.read_csv(run.suggestions)[S.ID].tolist() == picks[S.ID].tolist()
    assert "Suggested next experiments" in "".join(run.read_sections())
    write_suggestions(run, 2, "ei", "none", 0.8, seed=1)
    rounds = read_campaign(run.campaign)
    assert [r.round for r in rounds] == [0, 1] and rounds[1].acquisition == "ei"
    assert list(rounds[0].suggested) == picks[S.ID].tolist()


def test_the_suggest_stage_returns_data_and_writes_nothing(small_run, tmp_path):
    run = RunCatalog(shutil.copytree(small_run, tmp_path / "run"))
    before = sorted(p.relative_to(run.root) for p in run.root.rglob("*"))
    ranked = atomic_io.read_table(run.candidates_parquet)
    measured = atomic_io.read_table(run.known_materials)
    metrics = {"cv_mae": 1.5, "test_mae": 1.7, "routing": {}}
    out = suggest_next(ranked, measured, [], metrics, 2, "mli", "chemsys", 0.8, seed=0)
    assert sorted(p.relative_to(run.root) for p in run.root.rglob("*")) == before
    assert out.round.round == 0 and list(out.round.suggested) == out.picks[S.ID].tolist()
    assert out.round.metrics["cv_mae"] == 1.5 and "routing" not in out.round.metrics
    assert out.round.n_measured == int(measured[S.TARGET].notna().sum())
    assert "Suggested next experiments" in out.section


def test_suggesting_before_screening_names_the_command(tmp_path):
    with pytest.raises(UserError, match="screen first"):
        write_suggestions(RunCatalog(tmp_path), 2, "mli", "chemsys", 0.8, seed=0)


def test_a_suggested_material_measured_later_is_logged_with_its_value():
    from miscreen.suggest import CampaignRound
    from miscreen.suggest.next_round import newly_measured

    rounds = [CampaignRound(round=0, acquisition="mli", suggested=("mp-1", "mp-2"))]
    measured = pd.DataFrame({S.ID: ["mp-2", "obelix-9"], S.TARGET: [-3.5, -6.0]})
    assert newly_measured(rounds, measured) == {"mp-2": -3.5}
    rounds.append(CampaignRound(round=1, acquisition="mli", suggested=(), measured={"mp-2": -3.5}))
    assert newly_measured(rounds, measured) == {}  # logged once, in the round it came back


def test_the_physics_prior_can_be_switched_off_for_a_cold_start(small_run, tmp_path):
    """With no fast conductor measured, the prior ranks the batch unless it is switched off
    (``miscreen suggest --no-physics-prior``), and the round says which ranked it."""
    run = RunCatalog(shutil.copytree(small_run, tmp_path / "run"))
    known = atomic_io.read_table(run.known_materials)
    known[S.TARGET] = known[S.TARGET].clip(upper=-6.0)  # nothing reaches 1 mS/cm
    atomic_io.write_table(known, run.known_materials)
    write_suggestions(run, 2, "mli", "chemsys", 0.8, seed=0)
    write_suggestions(run, 2, "mli", "chemsys", 0.8, seed=0, physics_prior=False)
    first, second = read_campaign(run.campaign)
    assert (first.acquisition, second.acquisition) == ("prior", "mli")
