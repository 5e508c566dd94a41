"""The ``miscreen`` command: thin wiring of the stages; no science lives here."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from miscreen.cli import models as models_cli
from miscreen.cli import screen as screen_cli
from miscreen.cli.benchmark import app as benchmark_app
from miscreen.cli.case import app as case_app
from miscreen.cli.common import ConfigArg, load_config_or_exit
from miscreen.cli.fetch import app as fetch_app

app = typer.Typer(
    help="Screen crystal structures for solid Li-ion electrolytes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(fetch_app, name="fetch")
app.add_typer(benchmark_app, name="benchmark")
app.add_typer(case_app, name="case")
screen_cli.register(app)
models_cli.register(app)


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
def run(config: ConfigArg) -> None:
    """Run every stage (train, evaluate, screen, report) into results/<run_name>/."""
    from miscreen.pipeline import run as run_all

    out = run_all(load_config_or_exit(config), config)
    typer.echo(f"wrote {out}/ (candidates.csv, metrics.json, report.html, ...)")


@app.command()
def report(
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

    typer.echo(f"wrote {report_stage(load_config_or_exit(config), importances)}")
