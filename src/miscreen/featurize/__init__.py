"""Featurize a records table into a feature table (one row per id) and a failures table.

Presets (``presets.PRESET_GROUPS``): ``composition`` (Magpie statistics, stoichiometry,
valence orbitals, element fractions, oxidation-state descriptors), ``cell`` (+ cell
descriptors), ``structure`` (+ density, packing, disorder and coordination from positions),
``li_conductor`` (+ Li-transport descriptors), ``full`` (structure + Li transport; the
default for structures). Disorder is handled by occupancy-weighted
statistics (``featurize.context``). Expensive intermediates are built once per structure and
shared; results are cached on disk by record fingerprint, group and version; work runs in
parallel chunks with a per-structure time limit. Every table carries its
:class:`FeatureSchema`, checked again at predict time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from miscreen.featurize import engine
from miscreen.featurize.engine import resolve_jobs
from miscreen.featurize.presets import PRESETS, FeatureSchema, feature_schema
from miscreen.schema import ID, empty_failures

__all__ = [
    "PRESETS",
    "FeatureOptions",
    "FeatureResult",
    "FeatureSchema",
    "feature_schema",
    "featurize_records",
    "featurize_table",
    "resolve_jobs",
]


@dataclass(frozen=True)
class FeatureResult:
    """Features (index ``id``, columns ``schema.names``), failures, per-row info, schema."""

    features: pd.DataFrame
    failures: pd.DataFrame
    info: pd.DataFrame
    schema: FeatureSchema


def featurize_table(
    records: pd.DataFrame,
    preset: str = "cell",
    *,
    jobs: int | None = None,
    cache_dir: Path | None = None,
    chunk_size: int = engine.CHUNK_SIZE,
    time_limit: float | None = engine.TIME_LIMIT_S,
) -> FeatureResult:
    """Featurize in memory; ``info`` says per row which groups were computed (not cached),
    the oxidation-state method used and the seconds spent."""
    feats: list[pd.DataFrame] = []
    fails: list[pd.DataFrame] = []
    infos: list[pd.DataFrame] = []

    def sink(f: pd.DataFrame, x: pd.DataFrame, i: pd.DataFrame) -> None:
        feats.append(f)
        fails.append(x)
        infos.append(i)

    schema = engine.run(
        records,
        preset,
        sink,
        jobs=jobs,
        cache_dir=cache_dir,
        chunk_size=chunk_size,
        limit=time_limit,
    )
    empty = pd.DataFrame(columns=list(schema.names), index=pd.Index([], name=ID), dtype=float)
    return FeatureResult(
        features=pd.concat(feats) if feats else empty,
        failures=pd.concat(fails, ignore_index=True) if fails else empty_failures(),
        info=pd.concat(infos, ignore_index=True) if infos else pd.DataFrame(),
        schema=schema,
    )


@dataclass(frozen=True)
class FeatureOptions:
    """How a run featurizes: worker processes, the feature cache, the per-structure limit."""

    jobs: int | None = None
    cache_dir: Path | None = None
    time_limit: float | None = engine.TIME_LIMIT_S


def featurize_records(
    records: pd.DataFrame,
    preset: str = "cell",
    options: FeatureOptions | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, FeatureSchema]:
    """-> (features indexed by id with columns ``schema.names``, failures, schema)."""
    options = options or FeatureOptions()
    res = featurize_table(
        records,
        preset,
        jobs=options.jobs,
        cache_dir=options.cache_dir,
        time_limit=options.time_limit,
    )
    return res.features, res.failures, res.schema
