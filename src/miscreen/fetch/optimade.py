"""OPTIMADE: validate a filter, resolve providers, page through ``/structures`` into a store.

Entries are converted with optimade's own pymatgen adapter (``optimade.adapters``), which
keeps partial occupancies (species concentrations) and builds the structure from lists of
numbers and symbols (nothing in an entry is decoded as an object); every attribute that is
not part of the structure itself (including provider-specific ``_<prefix>_...`` fields) is
kept as JSON text in the ``properties`` column. An entry larger than the JSON limits of
:mod:`miscreen.fetch.parsing` and entries that cannot be converted go to the failures table.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pandas as pd

from miscreen import schema as S
from miscreen.errors import UserError
from miscreen.fetch.http import Page, PageResult, RetryingSession, stream_pages
from miscreen.fetch.parsing import check_json_size
from miscreen.fetch.records import structure_record
from miscreen.store.structures import PROPERTIES, SourceQuery, StructureStore

log = logging.getLogger(__name__)

PROVIDERS_URL = "https://providers.optimade.org/providers.json"
PROVIDERS_FALLBACK_URL = "https://providers.optimade.org/v1/links"
STRUCTURAL = frozenset(
    {
        "lattice_vectors",
        "cartesian_site_positions",
        "species",
        "species_at_sites",
        "nsites",
        "dimension_types",
        "nperiodic_dimensions",
        "assemblies",
    }
)
META_KEYS = ("api_version", "provider", "implementation", "data_available", "data_returned")
MP_THERMO = "gga_gga+u_r2scan"


class OptimadeError(UserError, RuntimeError):
    """A provider, filter or response that cannot be used; the message names it."""


@dataclass(frozen=True)
class Database:
    """An OPTIMADE database to query: its provider id and base URL."""

    provider: str
    base_url: str


def validate_filter(text: str) -> str:
    """Parse ``text`` with optimade's ``LarkParser``; raise ``OptimadeError`` before sending."""
    from optimade.exceptions import BadRequest
    from optimade.filterparser import LarkParser

    try:
        LarkParser().parse(text)
    except BadRequest as exc:
        raise OptimadeError(
            f"invalid OPTIMADE filter {text!r}: {exc.detail}\nSee the grammar at "
            f"https://github.com/Materials-Consortia/OPTIMADE/blob/master/optimade.rst#the-filter-language-ebnf-grammar"
            f' (strings need double quotes, e.g. elements HAS "Li").'
        ) from None
    return text


def structures_url(base_url: str) -> str:
    """``<base>/v1/structures`` for a base URL given with or without its version segment."""
    base = base_url.rstrip("/")
    if base.endswith("/structures"):
        return base
    last = base.rsplit("/", 1)[-1]
    if not (last.startswith("v") and last[1:].split(".")[0].isdigit()):
        base += "/v1"
    return f"{base}/structures"


def first_page_url(base_url: str, filter_: str, page_limit: int) -> str:
    """The URL of the first page of ``filter_`` at ``base_url``."""
    query = urlencode({"filter": filter_, "page_limit": page_limit})
    return f"{structures_url(base_url)}?{query}"


def next_link(body: dict[str, Any]) -> str | None:
    """``links.next`` of a response, which may be a URL string or a link object."""
    nxt = (body.get("links") or {}).get("next")
    if isinstance(nxt, dict):
        nxt = nxt.get("href")
    return nxt or None


def parse_page(body: dict[str, Any]) -> Page:
    """A response body as a ``Page``: entries, ``links.next`` and the useful ``meta``."""
    data = body.get("data")
    if data is None:
        raise OptimadeError(f"response has no 'data': {str(body)[:300]}")
    items = data if isinstance(data, list) else [data]
    meta = {k: v for k, v in (body.get("meta") or {}).items() if k in META_KEYS}
    return Page(items=items, next_cursor=next_link(body), meta=meta)


def get_json(session: RetryingSession, url: str) -> dict[str, Any]:
    """GET ``url`` and return its JSON body; non-200 answers raise naming the URL and detail."""
    resp = session.get(url)
    if resp.status_code != 200:
        try:
            errors = resp.json().get("errors") or [{}]
            detail = errors[0].get("detail") or resp.text[:300]
        except ValueError:
            detail = resp.text[:300]
        raise OptimadeError(f"{url} answered HTTP {resp.status_code}: {detail}")
    try:
        return resp.json()
    except ValueError as exc:
        raise OptimadeError(f"{url} did not return JSON: {resp.text[:200]!r}") from exc


def check_entry(entry: dict[str, Any]) -> None:
    """Raise ``ValueError`` with a reason for entries that cannot make a periodic structure."""
    attrs = entry.get("attributes") or {}
    lattice = attrs.get("lattice_vectors")
    if not lattice or any(v is None or any(x is None for x in v) for v in lattice):
        raise ValueError("missing lattice: lattice_vectors absent or holding nulls")
    sites = attrs.get("species_at_sites") or []
    names = {sp.get("name") for sp in attrs.get("species") or []}
    if not sites or (names and not set(sites) <= names):
        raise ValueError(
            f"inconsistent species: species_at_sites {sorted(set(sites) - names)} not in species"
        )
    positions = attrs.get("cartesian_site_positions") or []
    if len(positions) != len(sites) or attrs.get("nsites", len(sites)) != len(sites):
        raise ValueError(
            f"inconsistent species: {len(sites)} species_at_sites, {len(positions)} positions, "
            f"nsites={attrs.get('nsites')}"
        )


def entry_to_record(entry: dict[str, Any], source: str) -> dict[str, Any]:
    """An OPTIMADE structure entry as a records row (raises ``ValueError`` with a reason)."""
    from optimade.adapters import Structure as OptimadeStructure
    from pymatgen.core import Structure

    check_json_size(entry)
    check_entry(entry)
    try:
        structure = OptimadeStructure(entry).as_pymatgen
    except Exception as exc:
        raise ValueError(f"unparsable structure: {type(exc).__name__}: {exc}") from exc
    attrs = entry.get("attributes") or {}
    if not isinstance(structure, Structure):
        raise ValueError(
            f"not a periodic crystal: dimension_types {attrs.get('dimension_types')} "
            f"(the adapter gives a Molecule); only bulk structures are stored"
        )
    props = {k: v for k, v in attrs.items() if k not in STRUCTURAL}
    extra: dict[str, Any] = {PROPERTIES: json.dumps(props, default=str)}
    stability = attrs.get("_mp_stability")
    if isinstance(stability, dict) and isinstance(stability.get(MP_THERMO), dict):
        extra[S.E_HULL] = stability[MP_THERMO].get("energy_above_hull", math.nan)
    return structure_record(str(entry["id"]), source, structure, **extra)


def entries_to_frames(
    entries: list[dict[str, Any]], source: str, where: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Convert a page of entries; bad ones become failures naming ``where`` and the id."""
    rows, failures = [], []
    for n, entry in enumerate(entries):
        rid = str(entry.get("id", f"entry{n}"))
        try:
            rows.append(entry_to_record(entry, source))
        except (ValueError, KeyError, TypeError) as exc:
            failures.append(S.failure(rid, source, "fetch", f"{where} entry {n} ({rid}): {exc}"))
    return (
        S.ensure_record_columns(pd.DataFrame(rows)),
        pd.DataFrame(failures, columns=list(S.FAILURE_COLUMNS)),
    )


def resolve_provider(
    session: RetryingSession, provider_id: str, providers_url: str = PROVIDERS_URL
) -> list[Database]:
    """The databases of ``provider_id``: the providers list gives its index meta-database,
    whose ``/links`` lists the ``child`` databases (or the ``root`` if it has none)."""
    try:
        providers = get_json(session, providers_url)
    except OptimadeError:
        if providers_url != PROVIDERS_URL:
            raise
        providers = get_json(session, PROVIDERS_FALLBACK_URL)
    known = {p.get("id"): p.get("attributes", {}) for p in providers.get("data", [])}
    if provider_id not in known:
        raise OptimadeError(
            f"unknown OPTIMADE provider {provider_id!r} in {providers_url}; known: "
            f"{', '.join(sorted(str(k) for k in known))}. Or pass --base-url directly."
        )
    index = known[provider_id].get("base_url")
    if not index:
        raise OptimadeError(
            f"provider {provider_id!r} lists no OPTIMADE index (base_url is null in "
            f"{providers_url}); pass its database with --base-url"
        )
    links = get_json(session, f"{index.rstrip('/')}/v1/links")
    bases = {
        kind: [
            Database(provider_id, e["attributes"]["base_url"])
            for e in links.get("data", [])
            if e.get("attributes", {}).get("link_type") == kind
            and e.get("attributes", {}).get("base_url")
        ]
        for kind in ("child", "root")
    }
    found = bases["child"] or bases["root"]
    if not found:
        raise OptimadeError(f"{index}/v1/links lists no child databases for {provider_id!r}")
    return found


def fetch_database(
    store: StructureStore,
    db: Database,
    filter_: str,
    page_limit: int,
    session: RetryingSession,
    on_page: Callable[[PageResult, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Stream every page of ``filter_`` at ``db`` into ``store``; resume from its checkpoint."""
    url = structures_url(db.base_url)
    sq = SourceQuery(
        source=f"optimade:{url}",
        provider=db.provider,
        query={"kind": "optimade", "url": url, "filter": filter_, "page_limit": page_limit},
    )

    def fetch(cursor: str) -> Page:
        return parse_page(get_json(session, cursor))

    def convert(items: list[dict[str, Any]], index: int, cursor: str):
        return entries_to_frames(items, sq.source, f"page {index} ({cursor})")

    start = first_page_url(db.base_url, filter_, page_limit)
    return stream_pages(store, sq, start, fetch, convert, on_page=on_page)
