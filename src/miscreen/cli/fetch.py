"""``miscreen fetch``: fill a structure store from Materials Project, OPTIMADE or files."""

from __future__ import annotations

import typer

app = typer.Typer(help="Fetch structures into a store (Materials Project, OPTIMADE, local files).",
                  no_args_is_help=True)
