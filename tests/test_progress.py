"""Long work reports rows done, rate and time left; nested progress stays quiet."""

from __future__ import annotations

import logging

from miscreen import progress
from miscreen.progress import Progress


def test_lines_say_done_rate_and_eta(caplog, monkeypatch):
    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.0)
    with caplog.at_level(logging.INFO, "miscreen.progress"), Progress("job", 10, live=False) as p:
        p.advance(4, failed=1)
        p.advance(6, note="resumed chunk")
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("job: 4/10 rows, 1 failed,") and "rows/s, ETA" in lines[0]
    assert (
        lines[1].startswith("job: 10/10 rows (resumed chunk), 1 failed")
        and "ETA 0:00:00" in lines[1]
    )


def test_lines_are_throttled_but_the_last_step_always_shows(caplog):
    with caplog.at_level(logging.INFO, "miscreen.progress"), Progress("job", 100, live=False) as p:
        for _ in range(100):
            p.advance(1)
    lines = [r.getMessage() for r in caplog.records]
    assert 1 <= len(lines) <= 3 and lines[-1].startswith("job: 100/100 rows")


def test_progress_inside_a_live_bar_logs_at_debug(caplog, monkeypatch):
    monkeypatch.setattr(progress, "_live_bars", 1)  # as if a bar were on screen
    with caplog.at_level(logging.INFO, "miscreen.progress"), Progress("inner", 2) as p:
        p.advance(2)
    assert not caplog.records
