"""The per-structure time limit stops slow work on the main thread and on worker threads
(thread pools, Dask workers), and never raises once its block has been left."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest

from miscreen.featurize import engine, presets
from miscreen.featurize.time_limit import StructureTimeout, time_limit
from tests.featurize.conftest import record, rocksalt

LIMIT = 0.2
GIVE_UP_S = 10.0  # a loop the limit failed to stop ends here instead of hanging the suite


def slow_loop() -> str:
    """Pure-Python busy work that only a limit can cut short; says how it ended."""
    deadline = time.monotonic() + GIVE_UP_S
    n = 0
    while time.monotonic() < deadline:
        n += 1
    return "finished"


def limited(work: Callable[[], str], seconds: float = LIMIT) -> str:
    """Run ``work`` under ``time_limit``; the message of the timeout if one was raised."""
    try:
        with time_limit(seconds):
            return work()
    except StructureTimeout as exc:
        return f"timeout: {exc}"


def in_thread(fn: Callable[[], str]) -> str:
    """``fn()`` run in a plain ``threading.Thread`` (its result, or its exception's repr)."""
    result: list[str] = []

    def target() -> None:
        try:
            result.append(fn())
        except BaseException as exc:
            result.append(f"raised {exc!r}")

    t = threading.Thread(target=target)
    t.start()
    t.join(GIVE_UP_S * 2)
    assert not t.is_alive()
    return result[0]


def test_stops_a_slow_loop_on_the_main_thread() -> None:
    assert threading.current_thread() is threading.main_thread()
    assert limited(slow_loop) == f"timeout: exceeded the per-structure time limit of {LIMIT:g} s"


def test_stops_a_slow_loop_in_a_thread() -> None:
    assert in_thread(lambda: limited(slow_loop)).startswith("timeout: ")


def test_stops_a_slow_loop_in_a_thread_pool_worker() -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        outcome = pool.submit(limited, slow_loop).result(timeout=GIVE_UP_S * 2)
    assert outcome.startswith("timeout: ") and "time limit" in outcome


def test_stops_work_that_swallows_the_first_timeout() -> None:
    def stubborn() -> str:
        try:
            slow_loop()
        except StructureTimeout:
            pass  # what a careless `except Exception` in a featurizer would do
        return slow_loop()

    assert in_thread(lambda: limited(stubborn)).startswith("timeout: ")


def quick_blocks_then_wait() -> str:
    """Many fast blocks under a short limit, then idle past it: nothing may arrive late."""
    for _ in range(300):
        with time_limit(0.05):
            sum(range(200))
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:  # bytecode keeps running: a stray one would land
        pass
    time.sleep(0.1)
    return "quiet"


def test_no_timeout_arrives_after_fast_blocks_on_the_main_thread() -> None:
    assert quick_blocks_then_wait() == "quiet"


def test_no_timeout_arrives_after_fast_blocks_in_a_thread() -> None:
    assert in_thread(quick_blocks_then_wait) == "quiet"


def test_a_block_that_ends_in_time_keeps_its_result_and_errors() -> None:
    assert in_thread(lambda: limited(lambda: "done", seconds=5.0)) == "done"

    def fails() -> str:
        raise KeyError("own error")

    assert "KeyError" in in_thread(lambda: limited(fails, seconds=5.0))


@pytest.mark.parametrize("seconds", [None, 0, -1.0])
def test_no_limit_when_none_or_not_positive(seconds: float | None) -> None:
    def short_sleep() -> str:
        time.sleep(0.3)
        return "slept"

    assert limited(short_sleep, seconds=seconds) == "slept"  # type: ignore[arg-type]


def big_task() -> engine.Task:
    """A real 1728-site LiCl supercell needing every group of the ``full`` preset."""
    structure = rocksalt()
    structure.make_supercell([6, 6, 6])
    task = engine.make_tasks(pd.DataFrame([record("licl-666", structure)]))[0]
    task.needed = presets.groups("full")
    return task


def test_run_task_on_a_thread_reports_the_time_limit() -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        out = pool.submit(engine.run_task, big_task(), 1e-3).result(timeout=GIVE_UP_S * 6)
    assert out.reason is not None and "time limit" in out.reason
    assert out.values == {}


def test_run_task_on_a_thread_finishes_within_a_generous_limit() -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        out = pool.submit(engine.run_task, big_task(), 120.0).result(timeout=180)
    assert out.reason is None
    assert sorted(out.values) == sorted(presets.groups("full"))


def test_limits_off_the_main_thread_start_no_thread_each(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Dask worker featurizes hundreds of structures a second under the limit: one
    watchdog thread serves them all (a thread per limit cost a tenth of its time)."""
    started: list[str] = []
    real_start = threading.Thread.start

    def counting_start(self: threading.Thread) -> None:
        started.append(self.name)
        real_start(self)

    def many_blocks() -> str:
        for _ in range(200):
            with time_limit(5.0):
                sum(range(100))
        return "done"

    assert in_thread(many_blocks) == "done"  # the watchdog may start here, outside the count
    monkeypatch.setattr(threading.Thread, "start", counting_start)
    assert in_thread(many_blocks) == "done"
    assert len(started) == 1  # the thread in_thread itself starts
    assert in_thread(lambda: limited(slow_loop)).startswith("timeout: ")  # and it still fires
