"""``miscreen train`` and ``miscreen predict``: fit a run's models (or models on any
labelled CSV) and predict with a model folder.

``predict`` keeps the user's data: the output has the input's rows in the input's order,
every input column unchanged, an ``input_row`` number, then the prediction columns and a
``reason`` for every row that could not be predicted. A prediction column whose name the
input already uses is prefixed (``miscreen_model``), never overwritten.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from miscreen.cli.common import (
    check_model_out,
    check_table_out,
    cli_errors,
    load_config_or_exit,
)

if TYPE_CHECKING:
    import pandas as pd

    from miscreen.fetch.records import InputRow

INPUT_ROW = "input_row"
REASON = "reason"
PREFIX = "miscreen_"


def train(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Argument(help="run configuration (optional)")] = None,
    data: Annotated[
        Path | None, typer.Option(help="labelled CSV: composition, [structure], target")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="model directory to write (with --data)")] = None,
    target: Annotated[
        str, typer.Option(help="target column: log10_sigma, or sigma in S/cm")
    ] = "log10_sigma",
    preset: Annotated[str, typer.Option(help="feature preset for structure rows")] = "full",
) -> None:
    """Train and evaluate the models of CONFIG, or train on any labelled CSV (--data, --out)."""
    with cli_errors(ctx):
        if data is None:
            if config is None:
                raise typer.BadParameter("give a CONFIG or --data FILE --out DIR")
            from miscreen import pipeline

            metrics = pipeline.train_stage(load_config_or_exit(config))
            typer.echo({k: v for k, v in metrics.items() if not isinstance(v, dict)})
            return
        _train_on_csv(data, out, target, preset)


def _train_on_csv(data: Path, out: Path | None, target: str, preset: str) -> None:
    from pydantic import ValidationError

    from miscreen import pipeline
    from miscreen.config import Config, DataConfig, FeaturesConfig
    from miscreen.featurize import PRESETS
    from miscreen.fetch.sources import load_labelled
    from miscreen.train.routing import save_models

    if out is None:
        raise typer.BadParameter("--data needs --out DIR for the model directory")
    if preset not in PRESETS:
        raise typer.BadParameter(
            f"{preset!r}; choose one of {', '.join(PRESETS)}", param_hint="--preset"
        )
    if not data.is_file():
        raise typer.BadParameter(f"{data} does not exist or is not a file", param_hint="--data")
    folder = check_model_out(out, data)
    try:
        cfg = Config(
            run_name=folder.name,
            models_dir=folder.parent,
            results_dir=folder.parent / "results",
            data=DataConfig(train=data, target=target, test_split=None),
            features=FeaturesConfig(preset=preset),  # type: ignore[arg-type]
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise typer.BadParameter(problems) from None
    train_data = load_labelled(cfg, "all")
    for f in train_data.failures.itertuples():
        typer.secho(f"warning: skipped {f.id}: {f.reason}", fg="yellow", err=True)
    if train_data.records.empty:
        typer.secho(f"error: no usable rows in {data}", fg="red", err=True)
        raise typer.Exit(1)
    result = save_models(pipeline.train(cfg, train_data), cfg.models)
    for f in result.failures.itertuples():
        why = f"warning: not trained on {f.id} ({f.stage}): {f.reason}"
        typer.secho(why, fg="yellow", err=True)
    for name, m in result.cv.items():
        typer.echo(f"{name} model: {m['cv_n']} rows, CV MAE {m['cv_mae']:.3f} -> {folder / name}")
    for kind, choice in result.routing.items():
        typer.echo(f"{kind.replace('_', ' ')} use the {choice['model']} model")


def predict(
    ctx: typer.Context,
    model: Annotated[Path, typer.Option(help="model directory (models/<run-name>)")],
    input: Annotated[Path, typer.Option("--input", help="CSV (composition, [structure]) or JSONL")],
    out: Annotated[Path, typer.Option(help="output CSV or Parquet")],
    interval: Annotated[float, typer.Option(help="central interval level, in (0, 1)")] = 0.8,
) -> None:
    """Predict log10 conductivity with its interval for every row of a CSV or JSONL; the
    output keeps every input row and column, in order, with a reason where no prediction."""
    with cli_errors(ctx):
        from miscreen.fetch.local import input_kind

        if not (math.isfinite(interval) and 0 < interval < 1):
            why = f"{interval} is not in (0, 1), e.g. 0.8"
            raise typer.BadParameter(why, param_hint="--interval")
        check_table_out(out, input)
        input_kind(input)
        if not input.is_file():
            why = f"{input} does not exist or is not a file"
            raise typer.BadParameter(why, param_hint="--input")
        _predict(model, input, out, interval)


def _predict(model: Path, input: Path, out: Path, interval: float) -> None:
    from miscreen import atomic_io
    from miscreen.catalog import ModelCatalog
    from miscreen.config import Config
    from miscreen.featurize import FeatureOptions
    from miscreen.fetch import local
    from miscreen.screen.predict import predict_records
    from miscreen.train.routing import load_models

    models = load_models(ModelCatalog(model))
    columns, rows = local.read_input_rows(input)
    records = input_records(rows)
    predicted, failures = None, None
    if not records.empty:
        options = FeatureOptions(cache_dir=Config().cache_path)
        predicted, failures = predict_records(models, records, interval, options)
    table = prediction_table(columns, rows, predicted, failures)
    for row, reason in zip(rows, table[_names(columns)[REASON]], strict=True):
        if isinstance(reason, str) and reason:
            label = row.raw.get("id") or f"row {row.number}"
            typer.secho(f"warning: skipped {label}: {reason}", fg="yellow", err=True)
    atomic_io.write_table(table, out)
    done = int(table[_names(columns)[REASON]].isna().sum())
    typer.echo(f"wrote {len(table)} rows to {out}: {done} predicted, {len(table) - done} not")


def input_records(rows: list[InputRow]) -> pd.DataFrame:
    """The usable rows as a records table, each with the internal id ``row<N>``."""
    import pandas as pd

    from miscreen import schema as S

    good = [{**r.record, S.ID: f"row{r.number}"} for r in rows if r.record is not None]
    return S.ensure_record_columns(pd.DataFrame(good, columns=list(S.RECORD_COLUMNS)))


def _names(columns: list[str]) -> dict[str, str]:
    """Output name of each column miscreen adds: prefixed while the input uses the name."""
    from miscreen import schema as S

    taken = set(columns)
    names = {}
    for name in (INPUT_ROW, *S.PREDICTION_COLUMNS, REASON):
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
    the prediction columns, and ``reason`` (empty where predicted)."""
    import pandas as pd

    from miscreen import schema as S

    names = _names(columns)
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
        rec = preds.get(rid) if row.record is not None else None
        for col in S.PREDICTION_COLUMNS:
            values[names[col]] = rec.get(col) if rec is not None else None
        reason = row.reason
        if reason is None:
            found = rec is not None and _is_number(rec.get(S.PRED))
            reason = None if found else "; ".join(reasons.get(rid, [])) or "no prediction"
        if reason is None:
            values[names[REASON]] = None
        else:
            values[names[REASON]] = reason
            for col in S.PREDICTION_COLUMNS:
                values[names[col]] = None
        out_rows.append(values)
    table = pd.DataFrame(out_rows, columns=[*columns, *names.values()])
    for col in columns:
        table[col] = _uniform(table[col])
    for col in (S.PRED, S.LOWER, S.UPPER, S.UNCERTAINTY, S.DOMAIN_DISTANCE):
        table[names[col]] = pd.to_numeric(table[names[col]], errors="coerce")
    return table


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


def register(app: typer.Typer) -> None:
    app.command()(train)
    app.command()(predict)
