"""The wiring: one configured run, stage after stage. Stages return data; this package
decides what is written where, through the run catalog.

- ``stages``: train, evaluate, screen and report one configured run (``miscreen run``);
- ``importances``: the permutation importances the report shows (``feature_importance.csv``);
- ``screening``: ``miscreen screen`` / ``merge`` (whole pool or one shard) and the terminal
  summary of a ranked table;
- ``suggestion``: ``miscreen suggest`` (picks, campaign round, report section);
- ``verification``: ``miscreen verify`` (BVSE barriers, MD).
"""

from miscreen.pipeline.importances import importance_stage
from miscreen.pipeline.stages import (
    evaluate,
    feature_options,
    known_materials,
    predict,
    published_baselines,
    report_stage,
    run,
    screen_stage,
    train,
    train_stage,
    write_manifest,
)
from miscreen.pipeline.suggestion import suggest_stage
from miscreen.pipeline.verification import verify_bvse_stage

__all__ = [
    "evaluate",
    "feature_options",
    "importance_stage",
    "known_materials",
    "predict",
    "published_baselines",
    "report_stage",
    "run",
    "screen_stage",
    "suggest_stage",
    "train",
    "train_stage",
    "verify_bvse_stage",
    "write_manifest",
]
