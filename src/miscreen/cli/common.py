"""Pieces every command module shares."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from miscreen.config import Config

ConfigArg = Annotated[
    Path, typer.Argument(help="YAML run configuration, e.g. configs/default.yaml")
]


def load_config_or_exit(path: Path) -> Config:
    """The validated config, or a red one-line error and exit code 2."""
    from miscreen.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
