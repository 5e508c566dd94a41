"""A wall-clock limit on a block of Python code, on the main thread or any other.

:func:`time_limit` raises :class:`StructureTimeout` in the calling thread once the time is
up: on the main thread through a ``SIGALRM`` timer, on other threads (joblib threads, Dask
workers) through a watchdog thread and ``PyThreadState_SetAsyncExc``. The timeout is raised
again every ``REFIRE_S`` in case the block swallowed it, and never arrives once the block
has been left.
"""

from __future__ import annotations

import ctypes
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

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


class _Watchdog:
    """Raises :class:`StructureTimeout` in thread ``tid`` after ``seconds`` (then every
    ``REFIRE_S``) until :meth:`stop`; a lock makes stopping and firing mutually exclusive."""

    def __init__(self, tid: int, seconds: float) -> None:
        self.tid = tid
        self.fired = False
        self._active = True
        self._lock = threading.Lock()
        self._timer = self._start(seconds)

    def _start(self, delay: float) -> threading.Timer:
        timer = threading.Timer(delay, self._fire)
        timer.daemon = True
        timer.start()
        return timer

    def _fire(self) -> None:
        with self._lock:
            if not self._active:
                return
            _set_async_exc(self.tid, StructureTimeout)
            self.fired = True
            self._timer = self._start(REFIRE_S)

    def stop(self) -> bool:
        """Stop firing and drop an exception not yet delivered; True if the limit fired."""
        with self._lock:
            self._active = False
            self._timer.cancel()
        if self.fired:
            _set_async_exc(self.tid, None)
        return self.fired


def _set_async_exc(tid: int, exc: type[BaseException] | None) -> None:
    """Schedule ``exc`` in thread ``tid`` (``None``: clear a scheduled one)."""
    arg = ctypes.py_object(exc) if exc is not None else None  # None is passed as NULL
    if ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), arg) > 1:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), None)
        raise SystemError(f"PyThreadState_SetAsyncExc hit more than one thread for id {tid}")


def _stop(dog: _Watchdog) -> bool:
    """Stop ``dog`` even if its last timeout lands during the call (the next one is
    ``REFIRE_S`` away, so the second call completes)."""
    try:
        return dog.stop()
    except StructureTimeout:
        return dog.stop()


@contextmanager
def _watchdog_limit(seconds: float, message: str) -> Iterator[None]:
    """Any-thread limit: a watchdog timer raises the timeout asynchronously in this thread."""
    dog = _Watchdog(threading.get_ident(), seconds)
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
