"""A wall-clock limit on a block of Python code, on the main thread or any other.

:func:`time_limit` raises :class:`StructureTimeout` in the calling thread once the time is
up: on the main thread through a ``SIGALRM`` timer, on other threads (joblib threads, Dask
workers) through the process's one watchdog thread and ``PyThreadState_SetAsyncExc``. The
timeout is raised again every ``REFIRE_S`` in case the block swallowed it, and never
arrives once the block has been left.
"""

from __future__ import annotations

import ctypes
import heapq
import itertools
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

REFIRE_S = 1.0  # a timeout is raised again this often, in case code swallowed it


class StructureTimeout(Exception):
    """A structure exceeded its per-structure time limit."""

    def __init__(self, message: str = "exceeded the per-structure time limit") -> None:
        super().__init__(message)


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`StructureTimeout` in the calling thread once ``seconds`` have passed.

    On the main thread a ``SIGALRM`` timer raises it (this also breaks blocking calls such
    as ``sleep``); on any other thread (joblib threads, Dask workers) a watchdog thread
    delivers it with ``PyThreadState_SetAsyncExc``, which takes effect at the next Python
    bytecode, so a long call inside a C extension is stopped only when it returns. Once the
    block is left no timeout can arrive any more. ``None`` or ``<= 0``: no limit.
    """
    if seconds is None or not seconds > 0:
        yield
        return
    message = f"exceeded the per-structure time limit of {seconds:g} s"
    on_main = threading.current_thread() is threading.main_thread()
    limiter = _alarm_limit if on_main and hasattr(signal, "setitimer") else _watchdog_limit
    with limiter(float(seconds), message):
        yield


@contextmanager
def _alarm_limit(seconds: float, message: str) -> Iterator[None]:
    """Main-thread limit: ``SIGALRM`` after ``seconds``, then every ``REFIRE_S``."""
    active = True

    def _alarm(signum: int, frame: object) -> None:
        if active:  # a signal still pending when the block has ended does nothing
            raise StructureTimeout(message)

    previous = signal.signal(signal.SIGALRM, _alarm)
    start = time.monotonic()
    outer_delay, outer_interval = signal.setitimer(
        signal.ITIMER_REAL, seconds, min(seconds, REFIRE_S)
    )
    if 0 < outer_delay < seconds:  # an enclosing limit ends first: keep its deadline
        signal.setitimer(signal.ITIMER_REAL, outer_delay, min(seconds, REFIRE_S))
    try:
        yield
    finally:
        active = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_delay > 0:  # re-arm the enclosing limit with the time it has left
            left = max(outer_delay - (time.monotonic() - start), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, left, outer_interval)


@dataclass(eq=False)
class _Limit:
    """One thread's limit on the watchdog: its thread id, whether it is still wanted and
    whether a timeout has been delivered to it."""

    tid: int
    active: bool = True
    fired: bool = False


class _Watchdog:
    """One daemon thread per process that delivers every other thread's timeouts.

    A heap holds each active limit's next deadline; the thread sleeps until the earliest,
    raises :class:`StructureTimeout` in its thread and schedules it again ``REFIRE_S`` later.
    Starting and stopping a limit only touch the heap under the condition's lock (which makes
    stopping and firing mutually exclusive), so a Dask worker featurizing hundreds of
    structures a second starts no thread per structure (a thread per limit cost about a
    tenth of a worker's screening time). Stopped limits leave the heap when they reach its top, or
    when stale entries outnumber the live ones (:meth:`_compact`).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Limit]] = []
        self._order = itertools.count()
        self._live = 0
        self._thread: threading.Thread | None = None

    def start(self, seconds: float) -> _Limit:
        """A limit on the calling thread, firing ``seconds`` from now."""
        limit = _Limit(threading.get_ident())
        with self._cond:
            self._live += 1
            self._push(limit, time.monotonic() + seconds)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="miscreen-time-limit", daemon=True
                )
                self._thread.start()
            elif self._heap[0][2] is limit:  # the new limit ends first: wake the thread early
                self._cond.notify()
        return limit

    def stop(self, limit: _Limit) -> bool:
        """Stop firing and drop an exception not yet delivered; True if the limit fired."""
        with self._cond:
            if limit.active:
                limit.active = False
                self._live -= 1
                self._compact()
        if limit.fired:
            _set_async_exc(limit.tid, None)
        return limit.fired

    def _push(self, limit: _Limit, deadline: float) -> None:
        heapq.heappush(self._heap, (deadline, next(self._order), limit))

    def _compact(self) -> None:
        if len(self._heap) > 64 and len(self._heap) > 4 * self._live:
            self._heap = [entry for entry in self._heap if entry[2].active]
            heapq.heapify(self._heap)

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and not self._heap[0][2].active:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                deadline, _, limit = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                _set_async_exc(limit.tid, StructureTimeout)
                limit.fired = True
                self._push(limit, time.monotonic() + REFIRE_S)


_WATCHDOG = _Watchdog()


def _fresh_watchdog() -> None:
    """A forked child has no watchdog thread and a lock in unknown state: start afresh."""
    global _WATCHDOG
    _WATCHDOG = _Watchdog()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_watchdog)


def _set_async_exc(tid: int, exc: type[BaseException] | None) -> None:
    """Schedule ``exc`` in thread ``tid`` (``None``: clear a scheduled one)."""
    arg = ctypes.py_object(exc) if exc is not None else None  # None is passed as NULL
    if ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), arg) > 1:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), None)
        raise SystemError(f"PyThreadState_SetAsyncExc hit more than one thread for id {tid}")


def _stop(limit: _Limit) -> bool:
    """Stop ``limit`` even if its last timeout lands during the call (the next one is
    ``REFIRE_S`` away, so the second call completes)."""
    try:
        return _WATCHDOG.stop(limit)
    except StructureTimeout:
        return _WATCHDOG.stop(limit)


@contextmanager
def _watchdog_limit(seconds: float, message: str) -> Iterator[None]:
    """Any-thread limit: the process's watchdog raises the timeout asynchronously here."""
    dog = _WATCHDOG.start(seconds)
    try:
        yield
    except Exception as exc:
        if _stop(dog):  # ours fired: whatever the block made of it, the cause is the limit
            cause = None if isinstance(exc, StructureTimeout) else exc
            raise StructureTimeout(message) from cause
        raise
    except BaseException:
        _stop(dog)
        raise
    if _stop(dog):  # fired as the block ended, or the block swallowed it: it still overran
        raise StructureTimeout(message)
