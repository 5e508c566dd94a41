"""``miscreen train`` and ``miscreen predict``: fit a run's models (or models on any
labelled CSV) and predict with a model folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from miscreen.cli.common import load_config_or_exit


def train(
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
    from miscreen import pipeline
    from miscreen.config import Config, DataConfig, FeaturesConfig
    from miscreen.fetch.sources import load_labelled
    from miscreen.train.models import save_models

    if data is not None:
        if out is None:
            raise typer.BadParameter("--data needs --out DIR for the model directory")
        cfg = Config(
            run_name=out.name,
            models_dir=out.parent,
            results_dir=out.parent / "results",
            data=DataConfig(train=data, target=target, test_split=None),
            features=FeaturesConfig(preset=preset),  # type: ignore[arg-type]
        )
        train_data = load_labelled(cfg, "all")
        if train_data.records.empty:
            typer.secho(f"error: no usable rows in {data}", fg="red", err=True)
            raise typer.Exit(1)
        result = save_models(pipeline.train(cfg, train_data), cfg.models)
        for f in train_data.failures.itertuples():
            typer.secho(f"warning: skipped {f.id}: {f.reason}", fg="yellow", err=True)
        for name, m in result.cv.items():
            typer.echo(f"{name} model: {m['cv_n']} rows, CV MAE {m['cv_mae']:.3f} -> {out / name}")
        for kind, choice in result.routing.items():
            typer.echo(f"{kind.replace('_', ' ')} use the {choice['model']} model")
        return
    if config is None:
        raise typer.BadParameter("give a CONFIG or --data FILE --out DIR")
    metrics = pipeline.train_stage(load_config_or_exit(config))
    typer.echo({k: v for k, v in metrics.items() if not isinstance(v, dict)})


def predict(
    model: Annotated[Path, typer.Option(help="model directory (models/<run-name>)")],
    input: Annotated[Path, typer.Option("--input", help="CSV (composition, [structure]) or JSONL")],
    out: Annotated[Path, typer.Option(help="output CSV or Parquet")],
    interval: Annotated[float, typer.Option(help="central interval level")] = 0.8,
) -> None:
    """Predict log10 conductivity with its interval for every row of a CSV or JSONL."""
    from miscreen import store
    from miscreen.catalog import ModelCatalog
    from miscreen.config import Config
    from miscreen.featurize import FeatureOptions
    from miscreen.fetch import local
    from miscreen.schema import STRUCTURE
    from miscreen.screen.predict import predict_records
    from miscreen.train.models import load_models

    models = load_models(ModelCatalog(model))
    if input.suffix == ".csv":
        records, failures = local.load_candidate_csv(input)
    else:
        records, failures = local.load_jsonl(input, require_elements=())
    options = FeatureOptions(cache_dir=Config().cache_path)
    predicted, fails = predict_records(models, records, interval, options)
    for f in [*failures.itertuples(), *fails.itertuples()]:
        typer.secho(f"warning: skipped {f.id}: {f.reason}", fg="yellow", err=True)
    store.write_table(predicted.drop(columns=[STRUCTURE]), out)
    typer.echo(f"wrote {len(predicted)} predictions to {out}")


def register(app: typer.Typer) -> None:
    app.command()(train)
    app.command()(predict)
