"""The wiring of ``miscreen predict`` and ``miscreen train --data``: predict a user's file
with a model folder, or train a model folder on a user's labelled CSV.

``predict`` keeps the user's data: the output has the input's rows in the input's order,
every input column unchanged, an ``input_row`` number, the ``formula`` the prediction was
made for (the reduced formula of the composition that was featurized: the CIF's when a
structure was used), the prediction columns, and a ``reason`` for every row that could not
be predicted. A column whose name the input already uses is prefixed (``miscreen_model``),
never overwritten.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from miscreen import atomic_io
from miscreen import schema as S
from miscreen.catalog import ModelCatalog
from miscreen.config import Config, DataConfig, FeaturesConfig
from miscreen.errors import ConfigError
from miscreen.featurize import FeatureOptions
from miscreen.fetch import local
from miscreen.fetch.records import InputRow
from miscreen.screen.predict import predict_records
from miscreen.train.routing import TrainResult, hold_model_folder, load_models, save_models

INPUT_ROW = "input_row"
REASON = "reason"
PREFIX = "miscreen_"
ADDED_COLUMNS = (INPUT_ROW, S.FORMULA, *S.PREDICTION_COLUMNS, REASON)


@dataclass(frozen=True)
class PredictedFile:
    """What ``predict`` wrote: the table, and (label, reason) of each row not predicted."""

    table: pd.DataFrame
    skipped: list[tuple[str, str]]

    @property
    def predicted(self) -> int:
        return len(self.table) - len(self.skipped)


def predict_file(
    model: Path,
    input: Path,
    out: Path,
    interval: float,
    *,
    allow_outside: bool = False,
    trust_cif: bool = False,
) -> PredictedFile:
    """Predict every row of ``input`` (CSV or JSONL) with the model folder ``model`` and
    write the table to ``out`` (CSV or Parquet, atomically)."""
    models = load_models(ModelCatalog(model))
    columns, rows = local.read_input_rows(input, allow_outside=allow_outside, trust_cif=trust_cif)
    records = input_records(rows)
    predicted, failures = None, None
    if not records.empty:
        options = FeatureOptions(cache_dir=Config().cache_path)
        predicted, failures = predict_records(models, records, interval, options)
    table = prediction_table(columns, rows, predicted, failures)
    reasons = table[added_names(columns)[REASON]]
    skipped = [
        (str(row.raw.get("id") or f"row {row.number}"), reason)
        for row, reason in zip(rows, reasons, strict=True)
        if isinstance(reason, str) and reason
    ]
    atomic_io.write_table(table, out)
    return PredictedFile(table, skipped)


def input_records(rows: list[InputRow]) -> pd.DataFrame:
    """The usable rows as a records table, each with the internal id ``row<N>``."""
    good = [{**r.record, S.ID: f"row{r.number}"} for r in rows if r.record is not None]
    return S.ensure_record_columns(pd.DataFrame(good, columns=list(S.RECORD_COLUMNS)))


def added_names(columns: list[str]) -> dict[str, str]:
    """Output name of each column miscreen adds: prefixed while the input uses the name."""
    taken = set(columns)
    names = {}
    for name in ADDED_COLUMNS:
        new = name
        while new in taken:
            new = PREFIX + new
        taken.add(new)
        names[name] = new
    return names


def prediction_table(
    columns: list[str],
    rows: list[InputRow],
    predicted: pd.DataFrame | None,
    failures: pd.DataFrame | None,
) -> pd.DataFrame:
    """One output row per input row, in order: the input's columns as given, ``input_row``,
    the formula featurized, the prediction columns, and ``reason`` (empty where
    predicted)."""
    names = added_names(columns)
    preds: dict[str, dict] = {}
    if predicted is not None and not predicted.empty:
        for rec in predicted.to_dict("records"):
            preds[str(rec[S.ID])] = rec
    reasons: dict[str, list[str]] = {}
    if failures is not None:
        for f in failures.itertuples(index=False):
            reasons.setdefault(str(f.id), []).append(f"{f.stage}: {f.reason}")
    out_rows = []
    for row in rows:
        values: dict[str, Any] = {c: row.raw.get(c) for c in columns}
        values[names[INPUT_ROW]] = row.number
        rid = f"row{row.number}"
        values[names[S.FORMULA]] = featurized_formula(row.record)
        rec = preds.get(rid) if row.record is not None else None
        for col in S.PREDICTION_COLUMNS:
            values[names[col]] = rec.get(col) if rec is not None else None
        reason = row.reason
        if reason is None:
            found = rec is not None and _is_number(rec.get(S.PRED))
            reason = None if found else "; ".join(reasons.get(rid, [])) or "no prediction"
        values[names[REASON]] = reason
        if reason is not None:
            for col in S.PREDICTION_COLUMNS:
                values[names[col]] = None
        out_rows.append(values)
    table = pd.DataFrame(out_rows, columns=[*columns, *names.values()])
    for col in columns:
        table[col] = _uniform(table[col])
    for col in (S.PRED, S.LOWER, S.UPPER, S.UNCERTAINTY, S.DOMAIN_DISTANCE):
        table[names[col]] = pd.to_numeric(table[names[col]], errors="coerce")
    return table


def featurized_formula(record: dict | None) -> str | None:
    """The reduced formula of the composition a record is featurized with (for a row with a
    structure, the structure's); None without a usable record."""
    if record is None or not isinstance(record.get(S.COMPOSITION), str):
        return None
    return _reduced_formula(record[S.COMPOSITION])


@lru_cache(maxsize=4096)
def _reduced_formula(composition: str) -> str | None:
    from pymatgen.core import Composition

    from miscreen.fetch.records import formula_columns

    try:
        return formula_columns(Composition(composition))[0]
    except (ValueError, TypeError, KeyError):
        return None


def _is_number(value: object) -> bool:
    try:
        return math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _uniform(column: pd.Series) -> pd.Series:
    """An input column as given when its values share one type (text, numbers or booleans),
    else as text (JSON for lists and objects), so any table format can store it."""
    kinds = {
        "number" if isinstance(v, int | float) and not isinstance(v, bool) else type(v).__name__
        for v in column
        if v is not None
    }
    if len(kinds) <= 1 and not kinds & {"dict", "list"}:
        return column
    return column.map(lambda v: v if v is None or isinstance(v, str) else json.dumps(v))


# -- train --data ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CsvTraining:
    """What ``train --data`` did: the CSV rows not used (failures of reading them) and the
    saved models (None when no row was usable)."""

    skipped: pd.DataFrame
    result: TrainResult | None


def csv_training_config(
    data: Path,
    folder: Path,
    target: str,
    preset: str,
    allow_outside: bool = False,
    trust_cif: bool = False,
) -> Config:
    """The configuration of training on the labelled CSV ``data`` into ``folder``."""
    try:
        return Config(
            run_name=folder.name,
            models_dir=folder.parent,
            results_dir=folder.parent / "results",
            data=DataConfig(
                train=data,
                target=target,
                test_split=None,
                allow_outside=allow_outside,
                trust_cif=trust_cif,
            ),
            features=FeaturesConfig(preset=preset),  # type: ignore[arg-type]
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(problems) from None


def train_on_csv(
    data: Path,
    folder: Path,
    target: str,
    preset: str,
    allow_outside: bool = False,
    trust_cif: bool = False,
) -> CsvTraining:
    """Train the models of a labelled CSV (composition, [structure], target) and save them
    into ``folder``, holding the folder against other writers from start to end."""
    from miscreen.fetch.sources import load_labelled
    from miscreen.pipeline.stages import train

    cfg = csv_training_config(data, folder, target, preset, allow_outside, trust_cif)
    with hold_model_folder(cfg.models):
        train_data = load_labelled(cfg, "all")
        if train_data.records.empty:
            return CsvTraining(train_data.failures, None)
        return CsvTraining(train_data.failures, save_models(train(cfg, train_data), cfg.models))
