"""Materials Project through mp-api's ``MPRester`` (``materials.summary.search``).

The query is paged with ``_page``/``chunk_size`` sorted by ``material_id`` so that a page
number is a resume cursor. ``MPRester`` is given our ``RetryingSession`` (retries, timeout,
concurrency limit; urllib3 retries off) and its construction, which calls ``/heartbeat``
with plain ``requests``, is wrapped in ``retry_call``. The API key is read from
``MP_API_KEY`` when the request is made and is never logged or written.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import requests

from miscreen import schema as S
from miscreen.errors import UserError
from miscreen.fetch.http import (
    Page,
    PageResult,
    RetryingSession,
    RetryPolicy,
    is_transient,
    retry_call,
    stream_pages,
)
from miscreen.fetch.parsing import check_json_size, structure_from_dict
from miscreen.fetch.records import reason_of, structure_record
from miscreen.store.structures import SourceQuery, StructureStore

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://api.materialsproject.org/"
KEY_HELP = (
    "Get a key at https://next-gen.materialsproject.org/api (log in, copy the 32-character "
    "API key) and set it with `export MP_API_KEY=<your key>`."
)
FIELDS = [
    "material_id",
    "structure",
    "formula_pretty",
    "energy_above_hull",
    "band_gap",
    "is_stable",
    "theoretical",
]
DATABASE_VERSION = "database_version"


class MPKeyError(UserError, RuntimeError):
    """The Materials Project API key is missing, malformed or rejected."""


class MPError(UserError, RuntimeError):
    """A Materials Project request that failed for a reason other than the key."""


@dataclass(frozen=True)
class MPQuery:
    """Summary-endpoint filters; ranges are (min, max). Elements default to Li-containing."""

    elements: tuple[str, ...] | None = None
    chemsys: str | None = None
    energy_above_hull: tuple[float, float] | None = None
    band_gap: tuple[float, float] | None = None
    nsites: tuple[int, int] | None = None
    is_stable: bool | None = None
    theoretical: bool | None = None

    def search_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``SummaryRester.search``."""
        elements = self.elements
        if elements is None and self.chemsys is None:
            elements = ("Li",)
        kw: dict[str, Any] = {
            "elements": list(elements) if elements else None,
            "chemsys": self.chemsys,
            "energy_above_hull": self.energy_above_hull,
            "band_gap": self.band_gap,
            "num_sites": self.nsites,
            "is_stable": self.is_stable,
            "theoretical": self.theoretical,
        }
        return {k: v for k, v in kw.items() if v is not None}


def resolve_endpoint(endpoint: str | None = None) -> str:
    """``endpoint``, else ``MP_API_ENDPOINT``, else the public API; always ending in ``/``."""
    url = endpoint or os.environ.get("MP_API_ENDPOINT") or DEFAULT_ENDPOINT
    return url.rstrip("/") + "/"


def check_key_transport(endpoint: str) -> None:
    """Refuse to send the API key to ``endpoint`` unencrypted: ``https://`` always, plain
    ``http://`` only to this machine (``localhost``, 127.0.0.0/8, ``::1``: a local test
    server or tunnel, where the key never crosses a network)."""
    parts = urlsplit(endpoint)
    if parts.scheme == "https":
        return
    host = parts.hostname or ""
    if parts.scheme == "http" and _is_loopback(host):
        return
    raise MPError(
        f"refusing to send MP_API_KEY to {parts.scheme}://{host or '?'}: the key would cross "
        f"the network unencrypted. Use an https:// endpoint (plain http:// is allowed only "
        f"for localhost)."
    )


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def redact_key(docs: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """``docs`` with every occurrence of ``key`` replaced by ``<MP_API_KEY>`` (a server that
    echoes the key must not get it into records, failure reasons or logs)."""
    text = json.dumps(docs, default=str)
    if key not in text:
        return docs
    log.warning("the server's answer holds the API key; replaced by <MP_API_KEY>")
    return json.loads(text.replace(key, "<MP_API_KEY>"))


def api_key() -> str:
    """The key from ``MP_API_KEY``; a clear ``MPKeyError`` when it is not set."""
    key = os.environ.get("MP_API_KEY", "").strip()
    if not key:
        raise MPKeyError(f"no Materials Project API key: MP_API_KEY is not set. {KEY_HELP}")
    return key


def normalize_id(value: Any) -> str:
    """A material id in the classic ``mp-1234`` form (the API may send ``mp-aaaaaaff``);
    an id emmet-core cannot read is kept as sent, with a warning naming it."""
    try:
        from emmet.core.mpid import AlphaID
    except ImportError as exc:
        raise ImportError(
            f"reading Materials Project ids needs the emmet-core package ({exc}); install it "
            "with `pip install emmet-core` (it comes with `pip install mp-api`)"
        ) from exc
    text = str(value)
    try:
        return str(AlphaID(text).formatted)
    except (ValueError, TypeError) as exc:
        log.warning("material id %r kept as sent: emmet-core cannot read it (%s)", text, exc)
        return text


def _key_error(exc: Exception, key: str) -> MPKeyError | None:
    """An ``MPKeyError`` for mp-api errors that mean a bad key (message never holds the key)."""
    text = str(exc).replace(key, "<MP_API_KEY>")
    if re.search(r"status code (401|403)", text):
        where = re.search(r"on URL (\S+)", text)
        return MPKeyError(
            f"Materials Project rejected the API key in MP_API_KEY "
            f"({'at ' + where.group(1) if where else text.splitlines()[0]}). {KEY_HELP}"
        )
    if "API key" in text and "32 characters" in text:
        return MPKeyError(f"MP_API_KEY is set but is not a valid key (32 characters). {KEY_HELP}")
    return None


@contextmanager
def _mp_errors(key: str, what: str):
    """Translate mp-api errors: key problems to ``MPKeyError``, others to ``MPError``."""
    from mp_api.client.core import MPRestError

    try:
        yield
    except MPRestError as exc:
        bad_key = _key_error(exc, key)
        if bad_key is not None:
            raise bad_key from None
        raise MPError(f"{what}: {str(exc).replace(key, '<MP_API_KEY>')}") from None
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        # mp-api indexes the JSON it gets without checking it: odd JSON (another server,
        # a proxy's error page, a changed API) surfaces as a bare KeyError or TypeError
        detail = str(exc).replace(key, "<MP_API_KEY>")[:200]
        raise MPError(
            f"{what}: the server's answer is not a Materials Project API response "
            f"({type(exc).__name__}: {detail}); check the endpoint (--endpoint or "
            f"MP_API_ENDPOINT) and that it serves the Materials Project API"
        ) from None


def open_rester(endpoint: str, session: RetryingSession, key: str) -> Any:
    """An ``MPRester`` on ``endpoint`` using ``session``; retried while the server is down."""
    from mp_api.client import MPRester

    session.headers["x-api-key"] = key

    def make() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return MPRester(
                api_key=key,
                endpoint=endpoint,
                session=session,
                mute_progress_bars=True,
                use_document_model=False,
            )

    def transient(exc: BaseException) -> bool:
        return is_transient(exc) or isinstance(exc, requests.JSONDecodeError)

    with _mp_errors(key, f"connecting to {endpoint}"):
        return retry_call(make, session.policy, f"connect to {endpoint}", transient=transient)


def doc_to_record(doc: dict[str, Any], source: str, db_version: str) -> dict[str, Any]:
    """A summary document as a records row with the kept properties; the structure is read
    as data (``fetch.parsing.structure_from_dict``), never through pymatgen's decoder."""
    structure = doc.get("structure")
    if not isinstance(structure, dict) or not structure.get("lattice"):
        raise ValueError("missing lattice: no structure or structure without a lattice")
    try:
        check_json_size(structure)
        st = structure_from_dict(structure)
    except Exception as exc:
        raise ValueError(f"unparsable structure: {reason_of(exc)}") from exc
    return structure_record(
        normalize_id(doc["material_id"]),
        source,
        st,
        **{
            S.E_HULL: doc.get("energy_above_hull"),
            S.BAND_GAP: doc.get("band_gap"),
            "is_stable": doc.get("is_stable"),
            "theoretical": doc.get("theoretical"),
            "mp_formula": doc.get("formula_pretty"),
            DATABASE_VERSION: db_version,
        },
    )


def docs_to_frames(
    docs: list[dict[str, Any]], source: str, db_version: str, where: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Convert a page of summary docs; bad ones become failures naming the page and id."""
    rows, failures = [], []
    for n, doc in enumerate(docs):
        rid = normalize_id(doc["material_id"]) if "material_id" in doc else f"doc{n}"
        try:
            rows.append(doc_to_record(doc, source, db_version))
        except (ValueError, KeyError, TypeError) as exc:
            failures.append(S.failure(rid, source, "fetch", f"{where} doc {n} ({rid}): {exc}"))
    return (
        S.ensure_record_columns(pd.DataFrame(rows)),
        pd.DataFrame(failures, columns=list(S.FAILURE_COLUMNS)),
    )


def fetch_mp(
    store: StructureStore,
    query: MPQuery,
    endpoint: str | None = None,
    page_size: int = 1000,
    policy: RetryPolicy | None = None,
    on_page: Callable[[PageResult, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Stream the summary documents matching ``query`` into ``store``, page by page."""
    endpoint = resolve_endpoint(endpoint)
    key = api_key()
    check_key_transport(endpoint)
    session = RetryingSession(policy)
    mpr = open_rester(endpoint, session, key)
    with _mp_errors(key, f"{endpoint} heartbeat"):
        db_version = str(mpr.db_version or "").replace(key, "<MP_API_KEY>")
    sq = SourceQuery(
        source=f"mp:{endpoint}",
        provider="mp",
        query={"kind": "mp", "endpoint": endpoint, **_jsonable(asdict(query)), "page": page_size},
    )
    seen = store.checkpoint()["sources"].get(sq.slug, {}).get("meta", {}).get(DATABASE_VERSION)
    if seen is not None and seen != db_version and not store.resume_point(sq, "1").done:
        raise MPError(
            f"{endpoint} now reports database version {db_version!r} but this fetch started "
            f"on {seen!r}; pages would not line up. Fetch into a new --out folder."
        )
    kwargs = query.search_kwargs()
    meta = {
        DATABASE_VERSION: db_version,
        "endpoint": endpoint,
        "mp_api": metadata.version("mp-api"),
        "emmet_core": metadata.version("emmet-core"),
    }

    def fetch(cursor: str) -> Page:
        number = int(cursor)
        with _mp_errors(key, f"{endpoint} summary page {number}"):
            docs = mpr.materials.summary.search(
                **kwargs,
                fields=FIELDS,
                chunk_size=page_size,
                _page=number,
                _sort_fields="material_id",
            )
        if not isinstance(docs, list) or not all(isinstance(d, dict) for d in docs):
            shown = str(docs)[:100].replace(key, "<MP_API_KEY>")
            raise MPError(
                f"{endpoint} summary page {number}: expected a list of JSON objects, got "
                f"{type(docs).__name__} {shown}; is this a Materials Project API?"
            )
        docs = redact_key(docs, key)
        items = [dict(d, id=normalize_id(d.get("material_id"))) for d in docs]
        nxt = str(number + 1) if len(items) >= page_size else None
        return Page(items=items, next_cursor=nxt, meta=meta)

    def convert(items: list[dict[str, Any]], index: int, cursor: str):
        return docs_to_frames(items, sq.source, db_version, f"summary page {cursor}")

    try:
        return stream_pages(store, sq, "1", fetch, convert, on_page=on_page)
    finally:
        session.close()


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items() if v is not None}
