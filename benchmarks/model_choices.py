"""Model choices by DOI-grouped cross-validation on the OBELiX training split alone.

Run as ``.venv/bin/python benchmarks/model_choices.py`` (part of ``make bench``, about 5
minutes on 2 cores). The test split is never read. Writes ``results/bench/model_choices.json``
and prints a table: grouped-CV MAE and Spearman of the out-of-fold predictions for

- the four model kinds of ``model.kind``, with the hyperparameters the search chose for the
  default ensemble (extra trees ``max_features=0.5``, k=5 neighbours);
- LightGBM and XGBoost, which the issue names "if they earn their place": alone, and in place
  of or beside gradient boosting in the ensemble. They are not dependencies of miscreen;
  ``pip install lightgbm==4.7.0 xgboost==3.2.0`` into the environment to include them
  (otherwise the JSON says they were not installed).

Features are the default config's structure preset on every training row, censored values
handled as the config says: the same table ``miscreen train`` fits.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr
from sklearn.ensemble import VotingRegressor
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from miscreen import pipeline
from miscreen import schema as S
from miscreen.config import load_config
from miscreen.featurize import featurize_records
from miscreen.fetch.labels import apply_censoring
from miscreen.fetch.sources import load_labelled
from miscreen.train.estimators import make_regressor
from miscreen.train.fit import doi_groups

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "bench" / "model_choices.json"
CHOSEN = {"model__et__max_features": 0.5}  # what the default search picks (see model.json)


def gbm_members() -> dict[str, Callable[[], object]]:
    """LightGBM and XGBoost regressors, settings close to the ensemble's gradient boosting."""
    members: dict[str, Callable[[], object]] = {}
    try:
        import lightgbm as lgb

        members["lightgbm"] = lambda: lgb.LGBMRegressor(
            n_estimators=400, learning_rate=0.03, num_leaves=31, min_child_samples=5,
            subsample=0.8, subsample_freq=1, colsample_bytree=0.5, random_state=0, n_jobs=1,
            verbose=-1,
        )  # fmt: skip
    except ImportError:
        pass
    try:
        import xgboost as xgb

        members["xgboost"] = lambda: xgb.XGBRegressor(
            n_estimators=400, learning_rate=0.03, max_depth=8, subsample=0.8,
            colsample_bytree=0.5, min_child_weight=2, random_state=0, n_jobs=1,
        )  # fmt: skip
    except ImportError:
        pass
    return members


def candidates(names: list[str]) -> dict[str, Callable[[], Pipeline]]:
    """Name -> a fresh imputing pipeline, built with miscreen's own ``make_regressor``."""

    def kind(k: str) -> Callable[[], Pipeline]:
        def build() -> Pipeline:
            model = make_regressor(k, 300, 0)  # type: ignore[arg-type]
            return model.set_params(**CHOSEN) if k == "ensemble" else model

        return build

    kinds = ("ensemble", "extra_trees", "random_forest", "hist_gradient_boosting")
    out = {k: kind(k) for k in kinds}
    for name, member in gbm_members().items():

        def alone(member: Callable[[], object] = member) -> Pipeline:
            model = make_regressor("extra_trees", 300, 0)
            return model.set_params(model=member())

        def swapped(member: Callable[[], object] = member, keep_hgb: bool = False) -> Pipeline:
            model = kind("ensemble")()
            voting: VotingRegressor = model.named_steps["model"]
            kept = [(n, m) for n, m in voting.estimators if n != "hgb" or keep_hgb]
            return model.set_params(model=VotingRegressor([*kept, ("gbm", member())]))

        out[name] = alone
        out[f"ensemble, {name} in place of gradient boosting"] = swapped
        out[f"ensemble + {name}"] = lambda m=member: swapped(m, keep_hgb=True)
    return out


def main() -> dict:
    cfg = load_config(REPO / "configs" / "default.yaml")
    train = load_labelled(cfg, cfg.data.train_split)
    labelled = apply_censoring(train.records, cfg.data.censored)
    options = pipeline.feature_options(cfg)
    features, _, _ = featurize_records(labelled, cfg.features.preset, options)
    labels = labelled.set_index(S.ID).loc[features.index]
    X = features.to_numpy(dtype=float)
    y = labels[S.TARGET].to_numpy(dtype=float)
    groups = doi_groups(labels)
    print(f"{len(y)} training rows, {X.shape[1]} features, {len(set(groups))} DOIs")
    results = {}
    for name, build in candidates(list(features.columns)).items():
        t0 = time.perf_counter()
        with threadpool_limits(1):
            oof = cross_val_predict(build(), X, y, cv=GroupKFold(5), groups=groups)
        results[name] = {
            "grouped_cv_mae": float(np.mean(np.abs(oof - y))),
            "grouped_cv_spearman": float(spearmanr(oof, y).statistic),
            "seconds": time.perf_counter() - t0,
        }
        print(f"  {name:52s} MAE {results[name]['grouped_cv_mae']:.3f}  "
              f"Spearman {results[name]['grouped_cv_spearman']:.3f}", flush=True)  # fmt: skip
    out = {
        "cv": "GroupKFold(5) by DOI on the OBELiX training split; the test split is not read",
        "rows": len(y),
        "preset": cfg.features.preset,
        "censored": cfg.data.censored,
        "candidates": results,
        "not_installed": [m for m in ("lightgbm", "xgboost") if m not in gbm_members()],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
