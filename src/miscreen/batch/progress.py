"""Progress of a shard: a live rich bar on a terminal, one log line per chunk otherwise."""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)


def _eta(seconds: float) -> str:
    """Seconds as H:MM:SS."""
    s = int(max(seconds, 0))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class ChunkProgress:
    """Counts rows and failures chunk by chunk; rate and ETA count only rows done now."""

    def __init__(self, label: str, total_rows: int, total_chunks: int, live: bool | None = None):
        self.label = label
        self.total_rows = total_rows
        self.total_chunks = total_chunks
        self.live = sys.stderr.isatty() if live is None else live
        self.rows = self.chunks = self.failed = self.fresh_rows = 0
        self.start = time.perf_counter()
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> ChunkProgress:
        if self.live:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total_rows, rate="")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    def rate(self) -> float:
        """Rows per second computed in this run (resumed chunks excluded)."""
        elapsed = time.perf_counter() - self.start
        return self.fresh_rows / elapsed if elapsed > 0 else 0.0

    def advance(self, rows: int, failed: int, resumed: bool = False) -> None:
        """One chunk finished (``resumed``: it was already checkpointed)."""
        self.chunks += 1
        self.rows += rows
        self.failed += failed
        if not resumed:
            self.fresh_rows += rows
        rate = self.rate()
        eta = (self.total_rows - self.rows) / rate if rate > 0 else float("nan")
        if self._bar is not None:
            self._bar.update(self._task, completed=self.rows, rate=f"{rate:.1f} rows/s")
            return
        log.info(
            "%s: chunk %d/%d%s, %d/%d rows, %d failed, %.1f rows/s, ETA %s",
            self.label,
            self.chunks,
            self.total_chunks,
            " (resumed from checkpoint)" if resumed else "",
            self.rows,
            self.total_rows,
            self.failed,
            rate,
            _eta(eta) if eta == eta else "?",
        )
