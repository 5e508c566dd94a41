"""``miscreen case <name>``: retrospective case studies (rediscovering known conductors)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from miscreen.cli.common import cli_errors, load_config_or_exit

app = typer.Typer(help="Retrospective case studies.", no_args_is_help=True)


@app.command("lgps")
def lgps(
    ctx: typer.Context,
    config: Annotated[
        Path, typer.Argument(help="case configuration (pool, model, screen settings)")
    ] = Path("configs/lgps.yaml"),
) -> None:
    """Train without the LGPS family, screen the Li-structure pool, report LGPS's rank."""
    from miscreen.cases.lgps import headline, run_case

    cfg = load_config_or_exit(config)
    with cli_errors(ctx):
        summary = run_case(cfg)
    typer.echo(json.dumps(headline(summary), indent=1))
    typer.echo(f"wrote {cfg.run.case_json} and {cfg.run.report}")


@app.command("md-lgps")
def md_lgps(
    ctx: typer.Context,
    config: Annotated[
        Path, typer.Argument(help="case configuration (MD protocol, materials)")
    ] = Path("configs/md-lgps.yaml"),
) -> None:
    """CHGNet MD of Li10GeP2S12 and a poor conductor: conductivity without a measurement."""
    from miscreen.cases.md_lgps import run_case

    cfg = load_config_or_exit(config)
    with cli_errors(ctx):
        summary = run_case(cfg)
    keys = ("lgps", "poor", "poor_slower_at_every_temperature", "runtime_s")
    typer.echo(json.dumps({k: summary.get(k) for k in keys}, indent=1, default=str))
    typer.echo(f"wrote {cfg.run.case_json}")


@app.command("lgps-family")
def lgps_family(
    ctx: typer.Context,
    config: Annotated[
        Path, typer.Argument(help="case configuration (hold-out, parent, generation)")
    ] = Path("configs/lgps-family.yaml"),
) -> None:
    """Generate Li10MP2X12 (M = Ge, Si, Sn; X = S, Se, O) from LGPS: hull, σ, BVSE."""
    from miscreen.cases.lgps_family import headline, run_case

    cfg = load_config_or_exit(config)
    with cli_errors(ctx):
        summary = run_case(cfg)
    typer.echo(json.dumps(headline(summary), indent=1, default=str))
    typer.echo(f"wrote {cfg.run.case_json}")
