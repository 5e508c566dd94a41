"""The ``miscreen`` command: thin wiring of the stages; no science lives here."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

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
    from miscreen import atomic_io
    from miscreen.pipeline import run as run_all

    cfg = load_config_or_exit(config)
    with cli_errors(ctx):
        run_all(cfg, config)
    ranked = atomic_io.read_table(cfg.run.candidates_parquet)
    typer.echo("\n".join(top_lines(ranked, 10)))
    typer.echo(f"\nall candidates: {cfg.run.candidates_csv}\nreport: {cfg.run.report}")


def top_lines(ranked, k: int) -> list[str]:
    """The first ``k`` ranked candidates for a terminal: formula, source id, predicted
    conductivity in mS/cm with its interval, and why."""
    from miscreen import schema as S

    top = ranked[ranked[S.RANK].notna()].head(k)
    lines = [f"Top {len(top)} of {int(ranked[S.RANK].notna().sum())} ranked candidates "
             f"({len(ranked)} screened):"]  # fmt: skip
    for row in top.to_dict("records"):
        sigma, lo, hi = (1e3 * 10 ** row[c] for c in (S.PRED, S.LOWER, S.UPPER))
        lines.append(
            f"{int(row[S.RANK]):3d}. {row[S.FORMULA]:<14} {row[S.ID]:<12} "
            f"{sigma:.3g} mS/cm [{lo:.2g}, {hi:.2g}]"
        )
        lines.append(f"     {row[S.WHY]}")
    return lines


@app.command()
def suggest(
    ctx: typer.Context,
    config: ConfigArg,
    batch: Annotated[int, typer.Option("--batch", min=1, help="how many to suggest")] = 5,
    acquisition: Annotated[str, typer.Option(help="mli | mei | ucb | ei | mu | random")] = "mli",
    diversity: Annotated[
        str, typer.Option(help="chemsys (one per chemical system) | none")
    ] = "chemsys",
) -> None:
    """Suggest the next experiments from a screened run (results/<run>/suggestions.csv)."""
    from miscreen.pipeline import suggest_stage
    from miscreen.suggest.acquisition import ACQUISITIONS

    if acquisition not in ACQUISITIONS:
        raise typer.BadParameter(f"--acquisition must be one of {', '.join(ACQUISITIONS)}")
    if diversity not in ("chemsys", "none"):
        raise typer.BadParameter("--diversity must be chemsys or none")
    cfg = load_config_or_exit(config)
    with cli_errors(ctx):
        picks = suggest_stage(cfg, batch, acquisition, diversity)
    for row in picks.to_dict("records"):
        typer.echo(
            f"{int(row['rank']):2d}. {row['formula']:<14} {row['id']:<12} "
            f"log10 σ {row['predicted_log10_sigma']:.2f} [{row['lower']:.2f}, {row['upper']:.2f}]"
            f"; nearest measured {row['nearest_measured_composition']} "
            f"({row['nearest_measured_log10_sigma']:.2f})"
        )
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
