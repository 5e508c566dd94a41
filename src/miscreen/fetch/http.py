"""The one network layer of ``miscreen fetch``: a retry helper, a retrying session, one
pagination loop.

- ``retry_call`` retries a callable on transient errors (connection errors, timeouts, 429,
  5xx) with capped exponential backoff and jitter, honours ``Retry-After`` and gives up
  after a bounded number of attempts with ``RetriesExhausted``.
- ``RetryingSession`` is a ``requests.Session`` whose every request goes through
  ``retry_call`` with a per-request timeout and a concurrency limit; both the OPTIMADE client
  and mp-api's ``MPRester`` (which accepts a session) use it.
- ``paginate`` walks cursors (next URLs or page numbers) and stops when pagination makes no
  progress.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pandas as pd
import requests

from miscreen.errors import UserError
from miscreen.store.structures import SourceQuery, StructureStore

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts, backoff (seconds), per-request timeout, concurrency."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0
    timeout: float = 60.0
    concurrency: int = 4


class TransientError(Exception):
    """A failure worth retrying; ``retry_after`` is the server's requested wait, if any."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RetriesExhausted(Exception):
    """Gave up after the policy's attempts; the message names what failed and the last error."""

    def __init__(self, what: str, attempts: int, last_error: BaseException) -> None:
        super().__init__(f"{what}: gave up after {attempts} attempt(s); last error: {last_error}")
        self.what = what
        self.attempts = attempts
        self.last_error = last_error


def backoff_delay(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Capped exponential backoff with equal jitter for retry number ``attempt`` (1-based)."""
    cap = min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1))
    return cap / 2 + rng.uniform(0, cap / 2)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def is_transient(exc: BaseException) -> bool:
    """Connection errors, timeouts and ``TransientError`` are retried; anything else is not."""
    return isinstance(exc, TransientError | requests.ConnectionError | requests.Timeout)


def retry_call(
    fn: Callable[[], T],
    policy: RetryPolicy,
    what: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    transient: Callable[[BaseException], bool] = is_transient,
) -> T:
    """Call ``fn`` until it succeeds, retrying transient errors; raise ``RetriesExhausted``."""
    rng = rng or random.Random()
    for attempt in range(1, policy.attempts + 1):
        try:
            return fn()
        except Exception as exc:
            if not transient(exc):
                raise
            if attempt == policy.attempts:
                raise RetriesExhausted(what, attempt, exc) from exc
            wait = getattr(exc, "retry_after", None)
            if wait is not None and wait > policy.max_retry_after:
                raise RetriesExhausted(
                    what, attempt, TransientError(f"{exc} (server asks to wait {wait:.0f} s)")
                ) from exc
            delay = wait if wait is not None else backoff_delay(attempt, policy, rng)
            log.warning(
                "%s: %s; retry %d/%d in %.1f s", what, exc, attempt, policy.attempts - 1, delay
            )
            sleep(delay)
    raise AssertionError("unreachable: policy.attempts must be >= 1")


class RetryingSession(requests.Session):
    """A session whose requests are retried by ``retry_call``, time-limited and throttled.

    429 and 5xx responses count as transient; when the attempts run out ``RetriesExhausted``
    is raised (it is not a ``requests`` exception, so clients wrapping this session, such as
    mp-api, let it through unchanged).
    """

    def __init__(self, policy: RetryPolicy | None = None) -> None:
        super().__init__()
        self.policy = policy or RetryPolicy()
        self._slots = threading.BoundedSemaphore(self.policy.concurrency)
        adapter = requests.adapters.HTTPAdapter(max_retries=0)  # retries are ours, not urllib3's
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        """Send one request through ``retry_call`` with the policy's timeout."""
        kwargs["timeout"] = self.policy.timeout

        def once() -> requests.Response:
            with self._slots:
                resp = super(RetryingSession, self).request(method, url, *args, **kwargs)
            if resp.status_code in RETRY_STATUSES:
                raise TransientError(
                    f"HTTP {resp.status_code}", parse_retry_after(resp.headers.get("Retry-After"))
                )
            return resp

        return retry_call(once, self.policy, f"{method!s} {_redact(url)}")


def _redact(url: str | bytes) -> str:
    """The URL without its query string's values for keys that look like secrets."""
    text = url.decode() if isinstance(url, bytes) else str(url)
    return text if "key=" not in text.lower() else text.split("?", 1)[0] + "?<redacted>"


@dataclass(frozen=True)
class Page:
    """One page of results: records (dicts with an ``id``), the next cursor, response meta."""

    items: list[dict[str, Any]]
    next_cursor: str | None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PageResult:
    """A fetched page with its position, for streaming into a store."""

    index: int
    cursor: str
    page: Page
    stalled: str | None = None


def paginate(
    fetch: Callable[[str], Page], start: str, start_index: int = 0
) -> Iterator[PageResult]:
    """Yield pages from ``start`` until there is no next cursor or no progress is made.

    No progress means the next cursor equals the current one, or a page holds only ids
    already seen in this run; the last result then carries ``stalled`` with the reason.
    """
    cursor: str | None = start
    index = start_index
    seen: set[str] = set()
    while cursor is not None:
        page = fetch(cursor)
        ids = {str(item.get("id")) for item in page.items}
        stalled = None
        if page.next_cursor is not None and page.next_cursor == cursor:
            stalled = f"next link of page {index} repeats its own URL {cursor}"
        elif page.next_cursor is not None and ids and ids <= seen:
            stalled = f"page {index} ({cursor}) returned no new ids"
        elif page.next_cursor is not None and not ids:
            stalled = f"page {index} ({cursor}) is empty but has a next link"
        yield PageResult(index, cursor, page, stalled)
        if stalled:
            log.warning("stopping pagination: %s", stalled)
            return
        seen |= ids
        cursor = page.next_cursor
        index += 1


class FetchError(UserError, RuntimeError):
    """A fetch that stopped; the message names the page and how to resume."""


Converter = Callable[[list[dict[str, Any]], int, str], "tuple[pd.DataFrame, pd.DataFrame]"]


def stream_pages(
    store: StructureStore,
    sq: SourceQuery,
    start: str,
    fetch: Callable[[str], Page],
    convert: Converter,
    on_page: Callable[[PageResult, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run ``paginate`` for ``sq`` from its checkpoint, writing each page to ``store``.

    Returns the query's checkpoint state. When the network gives up, ``FetchError`` names the
    page and URL; the checkpoint already points at that page, so re-running resumes there.
    """
    point = store.resume_point(sq, start)
    if point.done:
        log.info("%s: already complete in %s, nothing to fetch", sq.source, store.root)
        return store.checkpoint()["sources"][sq.slug]
    assert point.cursor is not None
    at = {"index": point.index, "cursor": point.cursor}

    def tracked(cursor: str) -> Page:
        at["cursor"] = cursor
        return fetch(cursor)

    state: dict[str, Any] = {}
    try:
        for res in paginate(tracked, point.cursor, point.index):
            records, failures = convert(res.page.items, res.index, res.cursor)
            nxt = None if res.stalled else res.page.next_cursor
            state = store.write_page(
                sq, res.index, records, failures, nxt, meta=res.page.meta, stalled=res.stalled
            )
            at["index"] = res.index + 1
            log.info(
                "%s page %d: %d records, %d failures (so far %d records)%s",
                sq.source,
                res.index,
                len(records),
                len(failures),
                state["records"],
                "" if nxt else " - done",
            )
            if on_page is not None:
                on_page(res, state)
    except RetriesExhausted as exc:
        raise FetchError(
            f"{sq.source}: could not fetch page {at['index']} ({at['cursor']}): {exc}. "
            f"Pages before it are saved in {store.root}; re-run the same command to resume "
            f"from page {at['index']}."
        ) from exc
    return state or store.checkpoint()["sources"][sq.slug]
