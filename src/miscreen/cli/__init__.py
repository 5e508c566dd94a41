"""The ``miscreen`` command: thin wiring of the stages; no science lives here."""

from __future__ import annotations

import typer

from miscreen.cli.fetch import app as fetch_app

app = typer.Typer(
    help="Screen crystal structures for solid Li-ion electrolytes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(fetch_app, name="fetch")
