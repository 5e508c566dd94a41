"""The ``miscreen`` command: thin wiring of the stages; no science lives here."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from miscreen.cli import generate as generate_cli
from miscreen.cli import models as models_cli
from miscreen.cli import screen as screen_cli
from miscreen.cli.benchmark import app as benchmark_app
from miscreen.cli.case import app as case_app
from miscreen.cli.common import ConfigArg, cli_errors, load_config_or_exit
from miscreen.cli.fetch import app as fetch_app
from miscreen.cli.verify import app as verify_app

app = typer.Typer(
    help="Screen crystal structures for solid Li-ion electrolytes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(fetch_app, name="fetch")
app.add_typer(benchmark_app, name="benchmark")
app.add_typer(case_app, name="case")
app.add_typer(verify_app, name="verify")
screen_cli.register(app)
models_cli.register(app)
generate_cli.register(app)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("matplotlib", "urllib3", "numexpr"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logging")] = False):
    from threadpoolctl import threadpool_limits

    _setup_logging(verbose)
    # Parallelism is explicit (features.jobs, SLURM, Dask); keep BLAS/OpenMP to one thread
    # so no library grabs every core of a shared node or spins on a busy one.
    threadpool_limits(limits=1)


@app.command()
def run(ctx: typer.Context, config: ConfigArg) -> None:
    """Run every stage (train, evaluate, screen, report) into results/<run_name>/."""
    from miscreen.pipeline import run as run_all
    from miscreen.pipeline.screening import run_top_lines

    cfg = load_config_or_exit(config)
    with cli_errors(ctx):
        run_all(cfg, config)
        lines = run_top_lines(cfg, 10)
    typer.echo("\n".join(lines))
    typer.echo(f"\nall candidates: {cfg.run.candidates_csv}\nreport: {cfg.run.report}")


@app.command()
def suggest(
    ctx: typer.Context,
    config: ConfigArg,
    batch: Annotated[int, typer.Option("--batch", min=1, help="how many to suggest")] = 5,
    acquisition: Annotated[str, typer.Option(help="mli | mei | ucb | ei | mu | random")] = "mli",
    diversity: Annotated[
        str, typer.Option(help="chemsys (one per chemical system) | none")
    ] = "chemsys",
    physics_prior: Annotated[
        bool,
        typer.Option(
            help="while no measured material reaches 1 mS/cm, rank by the label-free prior "
            "(anion polarizability, Li fraction, BVSE barrier); after that, multiply the "
            "mli and ei scores by it"
        ),
    ] = True,
) -> None:
    """Suggest the next experiments from a screened run (results/<run>/suggestions.csv)."""
    from miscreen.pipeline.suggestion import suggest_stage, suggestion_lines
    from miscreen.suggest.acquisition import ACQUISITIONS

    if acquisition not in ACQUISITIONS:
        raise typer.BadParameter(f"--acquisition must be one of {', '.join(ACQUISITIONS)}")
    if diversity not in ("chemsys", "none"):
        raise typer.BadParameter("--diversity must be chemsys or none")
    cfg = load_config_or_exit(config)
    with cli_errors(ctx):
        picks = suggest_stage(cfg, batch, acquisition, diversity, physics_prior)
    typer.echo("\n".join(suggestion_lines(picks)))
    typer.echo(f"wrote {cfg.run.suggestions} and a round in {cfg.run.campaign}")


@app.command()
def report(
    ctx: typer.Context,
    config: ConfigArg,
    importances: Annotated[
        bool | None,
        typer.Option(
            "--importances/--no-importances",
            help="compute permutation importances (default: report.importances)",
        ),
    ] = None,
) -> None:
    """Render results/<run_name>/report.html from the run's outputs."""
    from miscreen.pipeline import report_stage

    cfg = load_config_or_exit(config)
    with cli_errors(ctx):
        typer.echo(f"wrote {report_stage(cfg, importances)}")
