"""The wiring: one configured run, stage after stage. Stages return data; this package
decides what is written where, through the run catalog."""

from miscreen.pipeline.stages import (
    evaluate,
    feature_options,
    predict,
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
    "predict",
    "report_stage",
    "run",
    "screen_stage",
    "suggest_stage",
    "train",
    "train_stage",
    "verify_bvse_stage",
    "write_manifest",
]
