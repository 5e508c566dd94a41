"""Progress of long work: a live bar on a terminal, log lines (done, rate, ETA) otherwise.

Only one bar is live at a time; progress started while a bar is live (featurization inside
a screened chunk, say) logs at DEBUG, so the terminal stays readable. Log lines come at
most every :data:`LINE_EVERY_S` seconds, and always for the last step.
"""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType
from typing import Any

log = logging.getLogger("miscreen.progress")

LINE_EVERY_S = 5.0
_live_bars = 0


def eta_text(seconds: float) -> str:
    """Seconds as H:MM:SS ('?' when unknown)."""
    if seconds != seconds or seconds == float("inf"):
        return "?"
    s = int(max(seconds, 0))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Progress:
    """Counts ``unit``s done out of ``total``; rate and ETA count only work done now
    (``resumed`` steps, found in a checkpoint, are excluded)."""

    def __init__(self, label: str, total: int, unit: str = "rows", live: bool | None = None):
        self.label = label
        self.total = total
        self.unit = unit
        self.live = sys.stderr.isatty() if live is None else live
        self.done = self.failed = self.fresh = self.steps = 0
        self.start = time.perf_counter()
        self._last_line = -LINE_EVERY_S
        self._bar: Any = None
        self._task: Any = None
        self._level = logging.INFO

    def __enter__(self) -> Progress:
        global _live_bars
        if _live_bars:
            self._level, self.live = logging.DEBUG, False
        if self.live:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as Bar

            self._bar = Bar(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
            )
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total, rate="")
            _live_bars += 1
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        global _live_bars
        if self._bar is not None:
            self._bar.stop()
            _live_bars -= 1

    def rate(self) -> float:
        """Units per second done in this run."""
        elapsed = time.perf_counter() - self.start
        return self.fresh / elapsed if elapsed > 0 else 0.0

    def advance(self, n: int = 1, failed: int = 0, resumed: bool = False, note: str = "") -> None:
        """``n`` more units are done (``failed`` of them failed)."""
        self.steps += 1
        self.done += n
        self.failed += failed
        if not resumed:
            self.fresh += n
        rate = self.rate()
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, rate=f"{rate:.3g} {self.unit}/s")
            return
        now = time.perf_counter() - self.start
        if self.done < self.total and now - self._last_line < LINE_EVERY_S:
            return
        self._last_line = now
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        log.log(
            self._level,
            "%s: %d/%d %s%s, %d failed, %.3g %s/s, ETA %s",
            self.label,
            self.done,
            self.total,
            self.unit,
            f" ({note})" if note else "",
            self.failed,
            rate,
            self.unit,
            eta_text(eta),
        )
