"""``miscreen fetch``: fill a structure store from Materials Project, OPTIMADE or files.

Thin wiring only: each command parses options, calls the fetch functions, then consolidates
the store. Re-running a command after a crash resumes from the store's checkpoint.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from miscreen.cli.common import cli_errors
from miscreen.fetch.http import RetryPolicy

app = typer.Typer(
    help="Fetch structures into a store (Materials Project, OPTIMADE, local files).",
    no_args_is_help=True,
)

Out = Annotated[Path, typer.Option("--out", help="Store folder (created; resumed if present).")]
Attempts = Annotated[int, typer.Option(min=1, help="Attempts per request before giving up.")]
Timeout = Annotated[float, typer.Option(min=0.1, help="Per-request timeout in seconds.")]
Backoff = Annotated[float, typer.Option(min=0.0, help="First retry delay in seconds (doubles).")]
Concurrency = Annotated[int, typer.Option(min=1, help="Most requests in flight at once.")]


def _setup_logging() -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    for noisy in ("urllib3", "httpx", "optimade"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _policy(attempts: int, timeout: float, backoff: float, concurrency: int) -> RetryPolicy:
    return RetryPolicy(
        attempts=attempts, base_delay=backoff, timeout=timeout, concurrency=concurrency
    )


def _range(text: str | None, cast: Callable[[str], Any] = float) -> tuple[Any, Any] | None:
    """``"MIN,MAX"`` (either side may be empty) as a tuple; None when not given."""
    if text is None:
        return None
    try:
        lo, hi = text.split(",")
        return (cast(lo) if lo.strip() else 0, cast(hi) if hi.strip() else 1e9)
    except ValueError:
        raise typer.BadParameter(f"expected MIN,MAX (e.g. 0,0.05), got {text!r}") from None


def _finish(out: Path, config: dict[str, Any]) -> None:
    from miscreen.store.structures import StructureStore

    manifest = StructureStore(out).finalize(config=config)
    c = manifest["counts"]
    typer.echo(
        f"{out}: {c['records']} records, {c['failures']} failures, "
        f"{c['cross_source_duplicates']} cross-source duplicates"
    )


@app.command("mp")
def mp_cmd(
    out: Out,
    elements: Annotated[
        list[str] | None, typer.Option("--element", "-e", help="Required element (repeat).")
    ] = None,
    chemsys: Annotated[str | None, typer.Option(help="Chemical system, e.g. Li-P-S.")] = None,
    energy_above_hull: Annotated[
        str | None, typer.Option(help="MIN,MAX eV/atom, e.g. 0,0.05.")
    ] = None,
    band_gap: Annotated[str | None, typer.Option(help="MIN,MAX eV.")] = None,
    nsites: Annotated[str | None, typer.Option(help="MIN,MAX sites.")] = None,
    is_stable: Annotated[bool | None, typer.Option("--is-stable/--not-stable")] = None,
    theoretical: Annotated[bool | None, typer.Option("--theoretical/--experimental")] = None,
    endpoint: Annotated[
        str | None, typer.Option(help="API URL (default MP_API_ENDPOINT or the public API).")
    ] = None,
    page_size: Annotated[int, typer.Option(min=1, max=1000)] = 1000,
    attempts: Attempts = 5,
    timeout: Timeout = 60.0,
    backoff: Backoff = 0.5,
    concurrency: Concurrency = 4,
) -> None:
    """Materials Project summary documents (key from MP_API_KEY; default: Li-containing)."""
    from miscreen.fetch.mp import MPQuery, fetch_mp
    from miscreen.store.structures import StructureStore

    _setup_logging()
    query = MPQuery(
        elements=tuple(elements) if elements else None,
        chemsys=chemsys,
        energy_above_hull=_range(energy_above_hull),
        band_gap=_range(band_gap),
        nsites=_range(nsites, int),
        is_stable=is_stable,
        theoretical=theoretical,
    )
    with cli_errors():
        fetch_mp(
            StructureStore(out),
            query,
            endpoint=endpoint,
            page_size=page_size,
            policy=_policy(attempts, timeout, backoff, concurrency),
        )
        _finish(out, {"command": "mp", "query": query.search_kwargs(), "page_size": page_size})


@app.command("optimade")
def optimade_cmd(
    out: Out,
    filter_: Annotated[
        str, typer.Option("--filter", help='OPTIMADE filter, e.g. elements HAS "Li"')
    ],
    base_url: Annotated[
        list[str] | None, typer.Option("--base-url", help="Database base URL (repeat).")
    ] = None,
    provider: Annotated[
        list[str] | None, typer.Option("--provider", help="Provider id from the providers list.")
    ] = None,
    providers_url: Annotated[str, typer.Option(help="Providers list URL.")] = (
        "https://providers.optimade.org/providers.json"
    ),
    page_limit: Annotated[int, typer.Option(min=1, help="Entries per page.")] = 100,
    attempts: Attempts = 5,
    timeout: Timeout = 60.0,
    backoff: Backoff = 0.5,
    concurrency: Concurrency = 4,
) -> None:
    """Any OPTIMADE database(s): --base-url URL and/or --provider ID, several per run."""
    from miscreen.fetch.http import RetryingSession
    from miscreen.fetch.optimade import (
        Database,
        OptimadeError,
        fetch_database,
        resolve_provider,
        validate_filter,
    )
    from miscreen.store.structures import StructureStore

    _setup_logging()
    with cli_errors():
        validate_filter(filter_)
        if not base_url and not provider:
            raise OptimadeError("give at least one --base-url URL or --provider ID")
        session = RetryingSession(_policy(attempts, timeout, backoff, concurrency))
        dbs = [Database("", u) for u in base_url or []]
        for pid in provider or []:
            dbs += resolve_provider(session, pid, providers_url)
        store = StructureStore(out)
        for db in dbs:
            fetch_database(store, db, filter_, page_limit, session)
        _finish(
            out,
            {
                "command": "optimade",
                "filter": filter_,
                "databases": [db.base_url for db in dbs],
                "providers": provider or [],
                "page_limit": page_limit,
            },
        )


@app.command("local")
def local_cmd(
    out: Out,
    path: Annotated[
        list[Path], typer.Option("--path", help="CIF folder or JSONL(.gz) snapshot (repeat).")
    ],
    id_field: Annotated[str, typer.Option(help="JSONL id field.")] = "material_id",
    id_prefix: Annotated[str, typer.Option(help="Prefix for JSONL ids, e.g. mbd-.")] = "",
    require_element: Annotated[
        list[str] | None, typer.Option("--require-element", help="Keep only with element.")
    ] = None,
) -> None:
    """CIF folders and JSONL snapshots of pymatgen structures."""
    from miscreen.fetch.local_store import fetch_local_into
    from miscreen.store.structures import StructureStore

    _setup_logging()
    with cli_errors():
        store = StructureStore(out)
        for p in path:
            fetch_local_into(store, p, id_field, id_prefix, tuple(require_element or ()))
        _finish(out, {"command": "local", "paths": [str(p) for p in path]})
