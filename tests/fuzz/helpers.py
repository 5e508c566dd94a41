"""A small trained model folder shared by the fuzz and CLI tests (and benchmarks/fuzz.py):
a few OBELiX compositions, preset ``composition``, ten extra trees; trained once per
process."""

from __future__ import annotations

import tempfile
from pathlib import Path

SMALL_MODEL: dict[str, Path] = {}
GOOD_FORMULAS = (
    "Li2O",
    "Li3PS4",
    "Li6PS5Cl",
    "Li7La3Zr2O12",
    "Li10GeP2S12",
    "LiCoO2",
    "Li3N",
    "Li0.33La0.56TiO3",
    "Li1.3Al0.3Ti1.7(PO4)3",
    "Li2S",
)


def small_model_folder(root: Path | None = None) -> Path:
    """A model folder (``routing.json`` and a model per kind) trained on 48 OBELiX rows."""
    if "path" in SMALL_MODEL:
        return SMALL_MODEL["path"]
    from miscreen.catalog import ModelCatalog
    from miscreen.config import ModelConfig
    from miscreen.featurize import FeatureOptions
    from miscreen.fetch.obelix import load_obelix
    from miscreen.train.routing import fit_models, save_models

    records, _ = load_obelix("train", with_structures=False)
    records = records.iloc[:: max(len(records) // 48, 1)].head(48).reset_index(drop=True)
    result = fit_models(
        records,
        preset="cell",
        model=ModelConfig(kind="extra_trees", n_estimators=10, cv_folds=3, tune=False),
        seed=0,
        censored="floor",
        features=FeatureOptions(jobs=1, cache_dir=None, time_limit=None),
    )
    folder = Path(root or tempfile.mkdtemp(prefix="miscreen-small-model-")) / "small"
    save_models(result, ModelCatalog(folder))
    SMALL_MODEL["path"] = folder
    return folder
