"""Pieces every command module shares: the config argument, one error handler that turns
any failure into one red line (the traceback only with ``miscreen --verbose``), and the
checks of output paths and options that must pass before any work starts.

Exit codes: 2 for a config error (:class:`~miscreen.errors.ConfigError`) and for a bad
option, 1 for any other error, 130 when interrupted."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from typer.exceptions import TyperException

from miscreen.config import Config
from miscreen.errors import ConfigError, UserError

ConfigArg = Annotated[
    Path, typer.Argument(help="YAML run configuration, e.g. configs/default.yaml")
]

MAX_MESSAGE_CHARS = 2000
TABLE_SUFFIXES = (".csv", ".parquet")
# shown as their message alone, without a type name or the --verbose hint: user errors,
# and the operating system's and libraries' file and value errors (a missing or unreadable
# file, a full disk), whose messages name the file or value
EXPECTED_ERRORS = (UserError, OSError, ValueError)


def load_config_or_exit(path: Path) -> Config:
    """The validated config, or a red one-line error and exit code 2."""
    from miscreen.config import load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None


def verbose_requested(ctx: typer.Context | None = None) -> bool:
    """Whether the root command was given ``--verbose`` (``-v``): read from the root
    context's parameters when ``ctx`` is given, else from the debug logging it turns on."""
    if ctx is not None:
        return bool(ctx.find_root().params.get("verbose"))
    return logging.getLogger().getEffectiveLevel() <= logging.DEBUG


def error_message(exc: BaseException) -> str:
    """One line for an error: the message of errors users fix themselves, else the type
    and message."""
    text = " ".join(str(exc).split())
    if isinstance(exc, EXPECTED_ERRORS):
        line = text or type(exc).__name__
    elif isinstance(exc, MemoryError):
        line = "out of memory"
    else:
        line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return line if len(line) <= MAX_MESSAGE_CHARS else line[: MAX_MESSAGE_CHARS - 3] + "..."


@contextmanager
def cli_errors(ctx: typer.Context | None = None, verbose: bool | None = None) -> Iterator[None]:
    """Run a command body; any exception becomes ``error: <message>`` in red and exit code 1
    (2 for a config error), unless ``--verbose`` (found through ``ctx``, or ``verbose=True``)
    asks for the traceback. Usage errors (``typer.BadParameter``) and exits pass through.

    Use it in every command: ``def run(ctx: typer.Context, ...): with cli_errors(ctx): ...``
    """
    try:
        yield
    except (typer.Exit, typer.Abort, TyperException):
        raise
    except KeyboardInterrupt:
        typer.secho("interrupted", fg="red", err=True)
        raise typer.Exit(130) from None
    except Exception as exc:
        if verbose if verbose is not None else verbose_requested(ctx):
            raise
        typer.secho(f"error: {error_message(exc)}", fg="red", err=True)
        if not isinstance(exc, EXPECTED_ERRORS):
            typer.secho("(run `miscreen --verbose ...` to see where it happened)", err=True)
        raise typer.Exit(2 if isinstance(exc, ConfigError) else 1) from None


def same_file(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name the same file (also through links or ``..``)."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.expanduser().resolve() == b.expanduser().resolve()


def check_table_out(out: Path, *inputs: Path, option: str = "--out") -> None:
    """Refuse, before any work, an output table that would overwrite an input or that has a
    suffix the writer does not know."""
    if out.suffix not in TABLE_SUFFIXES:
        raise typer.BadParameter(
            f"{out} must end in {' or '.join(TABLE_SUFFIXES)} (lower case)", param_hint=option
        )
    for path in inputs:
        if same_file(out, path):
            raise typer.BadParameter(
                f"{out} is also the input {path}; writing it would destroy the input. "
                f"Choose another output file",
                param_hint=option,
            )
    if out.exists() and out.is_dir():
        raise typer.BadParameter(f"{out} is a folder, not a file", param_hint=option)


def check_model_out(out: Path, *inputs: Path, option: str = "--out") -> Path:
    """The resolved folder a new model may be written to (a whole-folder swap replaces it):
    refuse the current folder or one above it, a folder holding an input, and an existing
    folder that is not a miscreen model folder. -> the resolved path."""
    import re

    target = out.expanduser().resolve()
    cwd = Path.cwd().resolve()
    if target == cwd or target in cwd.parents:
        raise typer.BadParameter(
            f"{out} is the current folder or one above it; the models are written into a "
            f"folder of their own that replaces any older one, e.g. models/mine",
            param_hint=option,
        )
    for path in inputs:
        if target in path.expanduser().resolve().parents:
            raise typer.BadParameter(
                f"{out} holds the input {path}; write the models to another folder",
                param_hint=option,
            )
    if target.exists() and not target.is_dir():
        raise typer.BadParameter(f"{out} is a file, not a folder", param_hint=option)
    from miscreen.catalog import ModelCatalog

    routing = ModelCatalog(target).routing
    if target.is_dir() and any(target.iterdir()) and not routing.is_file():
        raise typer.BadParameter(
            f"{out} holds files but is not a miscreen model folder (no {routing.name}); "
            f"refusing to replace it. Choose a new folder",
            param_hint=option,
        )
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", target.name) or set(target.name) <= {"."}:
        raise typer.BadParameter(
            f"the folder name {target.name!r} may hold only letters, digits, '.', '_' and '-'",
            param_hint=option,
        )
    return target
