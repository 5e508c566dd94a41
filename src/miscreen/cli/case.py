"""``miscreen case <name>``: retrospective case studies (rediscovering known conductors)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from miscreen.cli.common import load_config_or_exit

app = typer.Typer(help="Retrospective case studies.", no_args_is_help=True)

HEADLINE = (
    "pool_size",
    "lgps_rank",
    "lgps_percentile",
    "lgps_pred_log10_sigma",
    "lgps_interval",
    "si_analogue_ranks",
    "sn_analogue_ranks",
    "strict_lgps_rank",
    "strict_lgps_percentile",
    "strict_lgps_pred_log10_sigma",
    "strict_lgps_interval",
    "runtime_s",
)


@app.command("lgps")
def lgps(
    config: Annotated[
        Path, typer.Argument(help="case configuration (pool, model, screen settings)")
    ] = Path("configs/lgps.yaml"),
) -> None:
    """Train without the LGPS family, screen the Li-structure pool, report LGPS's rank."""
    from miscreen.cases.lgps import CASE_JSON, run_case

    cfg = load_config_or_exit(config)
    summary = run_case(cfg)
    typer.echo(json.dumps({k: summary.get(k) for k in HEADLINE}, indent=1))
    typer.echo(f"wrote {cfg.run.file(CASE_JSON)} and {cfg.run.report}")
