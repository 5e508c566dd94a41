"""Permutation feature importances of a run's composition model on its evaluation rows.

Computed by the wiring (before the report is rendered) from the saved model (sha256-checked
by ``load_model``) and the evaluation rows, loaded from the run's configured data folder and
featurized with the model's own preset; kept as ``feature_importance.csv`` in the run folder,
which is all the report reads, so a re-render does not recompute them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from miscreen import atomic_io
from miscreen import schema as S
from miscreen.catalog import ModelCatalog, ModelFolder, RunCatalog
from miscreen.config import Config
from miscreen.featurize import FeatureOptions, featurize_records
from miscreen.fetch.obelix import load_obelix
from miscreen.progress import Progress
from miscreen.train.persist import load_model
from miscreen.train.routing import COMPOSITION_MODEL

log = logging.getLogger(__name__)


def composition_model(manifest: dict) -> ModelFolder | None:
    """The composition model a run used, found from the model paths its manifest records
    (a model folder, or a run's folder of models); None when none exists on disk."""
    stages = manifest.get("stages", {})
    paths = [Path(p) for p in (stages.get("train", {}).get("models") or {}).values()]
    paths += [Path(p) for p in (stages.get("case", {}).get("models") or {}).values()]
    for path in paths:
        for folder in (ModelFolder(path), ModelCatalog(path).model(COMPOSITION_MODEL)):
            if folder.name == COMPOSITION_MODEL and folder.meta.is_file():
                return folder
    return None


def feature_group(name: str) -> str:
    """The group a feature is permuted with: one Magpie property (all its statistics), all
    element fractions, the stoichiometry norms, the valence-electron features; any other
    feature (cell, structure, Li-transport) alone."""
    body = name.split(":", 1)[-1]
    if body.startswith("MagpieData "):
        return "Magpie " + body.split(" ", 2)[-1]
    if name.startswith("comp:") and body.endswith("-norm"):
        return "stoichiometry norms"
    if name.startswith("comp:") and "valence electrons" in body:
        return "valence electrons"
    if name.startswith("comp:") and body.isalpha() and len(body) <= 2:
        return "element fractions"
    return name


def permutation_table(
    estimator: object, features: pd.DataFrame, y: np.ndarray, seed: int = 0, n_repeats: int = 3
) -> pd.DataFrame:
    """Increase in MAE when each feature group is shuffled (mean and std over repeats).

    Grouping keeps correlated statistics of one property together, which makes the numbers
    readable and cuts the predictions needed (about 40 groups instead of ~280 features).
    """
    X = features.to_numpy(float)
    base = float(np.mean(np.abs(estimator.predict(X) - y)))  # type: ignore[attr-defined]
    rng = np.random.default_rng(seed)
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(features.columns):
        groups.setdefault(feature_group(str(name)), []).append(i)
    rows = []
    with Progress("permutation importances", len(groups), "feature groups") as progress:
        for group, cols in groups.items():
            progress.advance()
            if np.isnan(X[:, cols]).all():
                continue
            scores = []
            for _ in range(n_repeats):
                Xp = X.copy()
                Xp[:, cols] = X[rng.permutation(len(X))][:, cols]
                pred = estimator.predict(Xp)  # type: ignore[attr-defined]
                scores.append(float(np.mean(np.abs(pred - y))) - base)
            rows.append((group, len(cols), float(np.mean(scores)), float(np.std(scores))))
    table = pd.DataFrame(
        rows, columns=["feature", "n_features", "importance_mean", "importance_std"]
    )
    return table.sort_values("importance_mean", ascending=False, ignore_index=True)


def evaluation_records(test: pd.DataFrame, data_dir: Path) -> pd.DataFrame:
    """The OBELiX records (all splits, read from ``data_dir``) of the run's evaluation rows,
    with their labels."""
    records, _ = load_obelix("all", with_structures=False, data_dir=data_dir)
    records = records[records[S.ID].isin(set(test[S.ID].astype(str)))]
    return records.drop(columns=[S.TARGET]).merge(test[[S.ID, S.TARGET]], on=S.ID)


def importance_stage(cfg: Config, features: FeatureOptions | None = None) -> pd.DataFrame | None:
    """The configured run's importances (see :func:`run_importances`), featurized with
    ``features`` (workers, cache); None, with the reason logged, when the run has no test
    predictions."""
    run = cfg.run
    if not run.test_predictions.exists():
        log.warning("%s has no test predictions: skipping importances", run.root)
        return None
    test = atomic_io.read_table(run.test_predictions)
    manifest = atomic_io.read_json(run.manifest)
    return run_importances(run, manifest, test, cfg.data_path, features)


def run_importances(
    run: RunCatalog,
    manifest: dict,
    test: pd.DataFrame,
    data_dir: Path,
    features: FeatureOptions | None = None,
) -> pd.DataFrame | None:
    """The run's importances: read from the run folder, else computed (evaluation rows from
    ``data_dir``) and saved there; None (with the reason logged) when the run has no usable
    model or OBELiX rows."""
    path = run.importances
    folder = composition_model(manifest)
    if folder is None:
        if path.exists():
            log.info("%s: its model is gone; showing the importances saved with the run", path)
            return atomic_io.read_table(path)
        log.warning("no composition model recorded for %s: skipping importances", run.root)
        return None
    sha = str(atomic_io.read_json(folder.meta).get("model_sha256"))
    if path.exists():
        cached = atomic_io.read_table(path)
        if "model_sha256" in cached and set(cached["model_sha256"].astype(str)) == {sha}:
            return cached
        log.info("%s was computed for another model: recomputing", path)
    saved = load_model(folder)
    records = evaluation_records(test, data_dir)
    if len(records) < 5:
        log.warning("%d OBELiX evaluation rows: too few for importances", len(records))
        return None
    table_x, _, schema = featurize_records(records, saved.schema.preset, features)
    saved.schema.check(schema)
    y = records.set_index(S.ID).loc[table_x.index, S.TARGET].to_numpy(float)
    table = permutation_table(saved.estimator, table_x, y, seed=int(manifest.get("seed", 0)))
    table["model"] = str(folder.root)
    table["model_sha256"] = sha
    table["rows"] = len(y)
    atomic_io.write_table(table, path)
    return table
