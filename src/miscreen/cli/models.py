"""``miscreen train`` and ``miscreen predict``: fit a run's models (or models on any
labelled CSV) and predict with a model folder. The work is done by the wiring
(:mod:`miscreen.pipeline.prediction`); this module parses options and prints."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from miscreen.cli.common import (
    check_model_out,
    check_table_out,
    cli_errors,
    load_config_or_exit,
)


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
    allow_outside: Annotated[
        bool, typer.Option(help="with --data: CIF paths may point outside the CSV's folder")
    ] = False,
    trust_cif: Annotated[
        bool, typer.Option(help="with --data: keep rows whose composition disagrees with their CIF")
    ] = False,
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
        _train_on_csv(data, out, target, preset, allow_outside, trust_cif)


def _train_on_csv(
    data: Path, out: Path | None, target: str, preset: str, allow_outside: bool, trust_cif: bool
) -> None:
    from miscreen.featurize import PRESETS
    from miscreen.pipeline.prediction import train_on_csv

    if out is None:
        raise typer.BadParameter("--data needs --out DIR for the model directory")
    if preset not in PRESETS:
        raise typer.BadParameter(
            f"{preset!r}; choose one of {', '.join(PRESETS)}", param_hint="--preset"
        )
    if not data.is_file():
        raise typer.BadParameter(f"{data} does not exist or is not a file", param_hint="--data")
    folder = check_model_out(out, data)
    done = train_on_csv(data, folder, target, preset, allow_outside, trust_cif)
    for f in done.skipped.itertuples():
        typer.secho(f"warning: skipped {f.id}: {f.reason}", fg="yellow", err=True)
    if done.result is None:
        typer.secho(f"error: no usable rows in {data}", fg="red", err=True)
        raise typer.Exit(1)
    for f in done.result.failures.itertuples():
        why = f"warning: not trained on {f.id} ({f.stage}): {f.reason}"
        typer.secho(why, fg="yellow", err=True)
    for name, m in done.result.cv.items():
        typer.echo(f"{name} model: {m['cv_n']} rows, CV MAE {m['cv_mae']:.3f} -> {folder / name}")
    for kind, choice in done.result.routing.items():
        typer.echo(f"{kind.replace('_', ' ')} use the {choice['model']} model")


def predict(
    ctx: typer.Context,
    model: Annotated[Path, typer.Option(help="model directory (models/<run-name>)")],
    input: Annotated[Path, typer.Option("--input", help="CSV (composition, [structure]) or JSONL")],
    out: Annotated[Path, typer.Option(help="output CSV or Parquet")],
    interval: Annotated[float, typer.Option(help="central interval level, in (0, 1)")] = 0.8,
    allow_outside: Annotated[
        bool, typer.Option(help="let a CSV's CIF paths point outside the CSV's folder")
    ] = False,
    trust_cif: Annotated[
        bool, typer.Option(help="keep rows whose composition disagrees with their CIF")
    ] = False,
) -> None:
    """Predict log10 conductivity with its interval for every row of a CSV or JSONL; the
    output keeps every input row and column, in order, adds the formula each prediction
    was made for, and gives a reason where there is no prediction."""
    with cli_errors(ctx):
        from miscreen.fetch.local import input_kind
        from miscreen.pipeline.prediction import predict_file

        if not (math.isfinite(interval) and 0 < interval < 1):
            why = f"{interval} is not in (0, 1), e.g. 0.8"
            raise typer.BadParameter(why, param_hint="--interval")
        check_table_out(out, input)
        input_kind(input)
        if not input.is_file():
            why = f"{input} does not exist or is not a file"
            raise typer.BadParameter(why, param_hint="--input")
        done = predict_file(
            model, input, out, interval, allow_outside=allow_outside, trust_cif=trust_cif
        )
        for label, reason in done.skipped:
            typer.secho(f"warning: skipped {label}: {reason}", fg="yellow", err=True)
        typer.echo(
            f"wrote {len(done.table)} rows to {out}: {done.predicted} predicted, "
            f"{len(done.skipped)} not"
        )


def register(app: typer.Typer) -> None:
    app.command()(train)
    app.command()(predict)
