"""``miscreen benchmark``: evaluation suites."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from miscreen.cli.common import cli_errors, load_config_or_exit
from miscreen.config import MODEL_KINDS

app = typer.Typer(help="Benchmarks of the models against published baselines.")


@app.command("obelix")
def obelix(
    ctx: typer.Context,
    config: Annotated[Path, typer.Option(help="run configuration")] = Path("configs/default.yaml"),
    out: Annotated[Path, typer.Option(help="output folder")] = Path("results/benchmark-obelix"),
    kinds: Annotated[
        str, typer.Option(help="comma-separated model kinds to compare by grouped CV")
    ] = ",".join(MODEL_KINDS),
    rf_grid: Annotated[
        bool,
        typer.Option(
            "--rf-grid",
            help="re-run the OBELiX paper's grid search for its random forest (minutes)",
        ),
    ] = False,
) -> None:
    """Evaluate on the official OBELiX split: test metrics, CV, grouped CV, leave-one-family-
    out, interval coverage, and the OBELiX paper's random forest re-run beside ours; writes
    OUT/metrics.json and OUT/table.md."""
    from miscreen.benchmark import benchmark_obelix

    cfg = load_config_or_exit(config)
    with cli_errors(ctx):
        lines = benchmark_obelix(cfg, out, tuple(k.strip() for k in kinds.split(",") if k), rf_grid)
    typer.echo("\n".join(lines))
