"""Featurize a records table into a feature table (one row per id) and a failures table.

Presets: ``composition`` (composition + cell descriptors, for entries without positions),
and structure presets that add descriptors computed from atomic positions. Every table is
saved with its schema (names, order, version), checked again at predict time.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from miscreen import schema as S
from miscreen.featurize import cell, composition
from miscreen.fetch.structures import parse_composition, structure_from_json

log = logging.getLogger(__name__)

PRESETS = ("composition", "structure", "li_conductor", "full")


@dataclass(frozen=True)
class FeatureSchema:
    preset: str
    names: tuple[str, ...]
    version: str

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FeatureSchema:
        return cls(preset=d["preset"], names=tuple(d["names"]), version=d["version"])

    def check(self, other: FeatureSchema) -> None:
        if self != other:
            missing = sorted(set(self.names) - set(other.names))[:5]
            raise ValueError(
                f"feature schema mismatch: model expects preset {self.preset!r} v{self.version} "
                f"with {len(self.names)} features, got {other.preset!r} v{other.version} with "
                f"{len(other.names)} (first missing: {missing}). Re-featurize with the "
                f"model's preset or retrain."
            )


def feature_schema(preset: str) -> FeatureSchema:
    if preset not in PRESETS:
        raise ValueError(f"unknown feature preset {preset!r}; choose one of {PRESETS}")
    names = tuple(composition.labels() + cell.LABELS)
    return FeatureSchema(preset, names, f"comp{composition.VERSION}-cell{cell.VERSION}")


def featurize_records(
    records: pd.DataFrame, preset: str = "composition"
) -> tuple[pd.DataFrame, pd.DataFrame, FeatureSchema]:
    """-> (features indexed by id, failures, schema)."""
    schema = feature_schema(preset)
    rows: list[np.ndarray] = []
    ids: list[str] = []
    failures: list[dict] = []
    for rec in records.itertuples(index=False):
        rec_d = rec._asdict()
        rid = str(rec_d[S.ID])
        try:
            rows.append(_featurize_one(rec_d))
            ids.append(rid)
        except Exception as exc:
            failures.append(S.failure(rid, str(rec_d[S.SOURCE]), "featurize", str(exc)))
    table = pd.DataFrame(
        np.vstack(rows) if rows else np.empty((0, len(schema.names))),
        index=pd.Index(ids, name=S.ID),
        columns=list(schema.names),
    )
    return table, pd.DataFrame(failures, columns=list(S.FAILURE_COLUMNS)), schema


def _featurize_one(rec: dict) -> np.ndarray:
    comp = parse_composition(rec[S.COMPOSITION])
    raw = rec.get(S.STRUCTURE)
    structure = structure_from_json(raw) if isinstance(raw, str) and raw else None
    lattice = tuple(_f(rec.get(k)) for k in S.LATTICE)
    return np.concatenate(
        [
            composition.featurize(comp),
            cell.featurize(comp, structure, _f(rec.get(S.SPACEGROUP)), lattice, _f(rec.get(S.Z))),
        ]
    )


def _f(value: object) -> float:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return out
