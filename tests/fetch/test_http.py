"""The retry helper and the pagination loop."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests

from miscreen.fetch.http import (
    Page,
    RetriesExhausted,
    RetryPolicy,
    TransientError,
    backoff_delay,
    paginate,
    parse_retry_after,
    retry_call,
)

POLICY = RetryPolicy(attempts=4, base_delay=1.0, max_delay=3.0)


def flaky(errors: list[Exception], result: str = "ok"):
    calls = []

    def fn() -> str:
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return result

    return fn, calls


def test_retries_transient_errors_with_capped_growing_backoff() -> None:
    fn, calls = flaky(
        [requests.ConnectionError("refused"), requests.Timeout("slow"), TransientError("HTTP 503")]
    )
    sleeps: list[float] = []
    assert retry_call(fn, POLICY, "GET x", sleep=sleeps.append, rng=random.Random(0)) == "ok"
    assert len(calls) == 4
    # equal jitter: attempt n waits in [cap/2, cap], cap = min(3, 1 * 2**(n-1))
    for n, delay in enumerate(sleeps, start=1):
        cap = min(3.0, 2 ** (n - 1))
        assert cap / 2 <= delay <= cap
    assert max(backoff_delay(30, POLICY, random.Random(1)) for _ in range(5)) <= 3.0


def test_retry_after_is_honoured() -> None:
    fn, _ = flaky([TransientError("HTTP 429", retry_after=7.0)])
    sleeps: list[float] = []
    retry_call(fn, POLICY, "GET x", sleep=sleeps.append)
    assert sleeps == [7.0]


def test_gives_up_after_the_policy_attempts_naming_the_request() -> None:
    fn, calls = flaky([requests.ConnectionError("refused")] * 10)
    with pytest.raises(
        RetriesExhausted, match=r"GET page 3: gave up after 4 attempt\(s\).*refused"
    ):
        retry_call(fn, POLICY, "GET page 3", sleep=lambda s: None)
    assert len(calls) == 4


def test_retry_after_beyond_the_limit_gives_up_at_once() -> None:
    fn, calls = flaky([TransientError("HTTP 429", retry_after=3600)])
    with pytest.raises(RetriesExhausted, match="wait 3600 s"):
        retry_call(fn, POLICY, "GET x", sleep=lambda s: None)
    assert len(calls) == 1


def test_other_errors_are_not_retried() -> None:
    fn, calls = flaky([ValueError("bad json")])
    with pytest.raises(ValueError, match="bad json"):
        retry_call(fn, POLICY, "GET x", sleep=lambda s: None)
    assert len(calls) == 1


def test_parse_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(None) is None
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= parse_retry_after(when) <= 31  # type: ignore[operator]


def pages(mapping: dict[str, Page]):
    return lambda cursor: mapping[cursor]


def test_paginate_follows_next_until_none() -> None:
    book = {
        "a": Page([{"id": "1"}], "b"),
        "b": Page([{"id": "2"}], "c"),
        "c": Page([{"id": "3"}], None),
    }
    got = list(paginate(pages(book), "a"))
    assert [r.cursor for r in got] == ["a", "b", "c"]
    assert [r.index for r in got] == [0, 1, 2]
    assert all(r.stalled is None for r in got)


def test_paginate_stops_when_next_repeats_the_same_url() -> None:
    book = {"a": Page([{"id": "1"}], "b"), "b": Page([{"id": "2"}], "b")}
    got = list(paginate(pages(book), "a", start_index=5))
    assert [r.index for r in got] == [5, 6]
    assert "repeats its own URL" in (got[-1].stalled or "")


def test_paginate_stops_when_a_page_brings_no_new_ids() -> None:
    book = {
        "a": Page([{"id": "1"}, {"id": "2"}], "b"),
        "b": Page([{"id": "2"}, {"id": "1"}], "c"),
        "c": Page([{"id": "3"}], None),
    }
    got = list(paginate(pages(book), "a"))
    assert len(got) == 2
    assert "no new ids" in (got[-1].stalled or "")
