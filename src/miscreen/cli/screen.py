"""``miscreen screen``: predict and rank candidates with a run's trained models."""

from __future__ import annotations

import typer

from miscreen.cli.common import ConfigArg, load_config_or_exit


def screen(config: ConfigArg) -> None:
    """Predict and rank the configured candidates with the run's trained models."""
    from miscreen.pipeline import screen_stage

    ranked = screen_stage(load_config_or_exit(config))
    typer.echo(f"ranked {int(ranked['rank'].notna().sum())} of {len(ranked)} candidates")


def register(app: typer.Typer) -> None:
    app.command()(screen)
