"""`miscreen verify bvse`: barriers for the top candidates join the candidate table, can
count in the score, and show in the report."""

from __future__ import annotations

import shutil

import pandas as pd
import yaml

from miscreen import schema as S
from miscreen.config import load_config
from miscreen.pipeline import verify_bvse_stage


def test_barriers_join_the_ranking_and_the_report(small_run, tmp_path):
    raw = yaml.safe_load((small_run.parents[1] / "small.yaml").read_text())
    screen = {"top_k": 5, "barrier_weight": 1, "score": "mean"}  # the score in log10 S/cm
    raw |= {"results_dir": str(tmp_path / "results"), "screen": screen}
    shutil.copytree(small_run, tmp_path / "results" / "small")
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump(raw))
    cfg = load_config(config)
    before = pd.read_parquet(cfg.run.candidates_parquet)
    out = verify_bvse_stage(cfg, top=4)
    checked = out[out[S.BVSE_METHOD].notna()]
    with_structure = before[before[S.RANK].notna()].head(4)
    assert 1 <= len(checked) <= 4 and set(checked[S.ID]) <= set(with_structure[S.ID])
    assert (checked[S.BVSE_E3D].dropna() > 0).all()
    assert checked["why"].str.contains("BVSE 3-D Li barrier").all()
    # with barrier_weight 1 the score is the prediction minus the barrier (unchecked rows
    # count as the highest barrier found), so the ranking is a pure function of both
    worst = checked[S.BVSE_E3D].max()
    ranked = out[out[S.RANK].notna()]
    expected = ranked[S.PRED] - ranked[S.BVSE_E3D].fillna(worst)
    assert (ranked["score"] - expected).abs().max() < 1e-9
    html = cfg.run.report.read_text()
    assert 'id="bvse"' in html and "bond-valence" in html
    assert pd.read_csv(cfg.run.candidates_csv)[S.BVSE_E3D].notna().sum() == len(checked)
