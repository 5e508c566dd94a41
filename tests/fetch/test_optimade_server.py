"""The OPTIMADE client against the real reference server (uvicorn + mongomock on 127.0.0.1)
loaded with the mp-2018 snapshot: pagination, stop/restart, injected faults, kill/resume."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from pymatgen.core import Composition, Structure
from typer.testing import CliRunner

from miscreen import schema as S
from miscreen.atomic_io import read_json
from miscreen.cli.fetch import app
from miscreen.fetch.http import FetchError, RetryingSession, RetryPolicy
from miscreen.fetch.optimade import Database, fetch_database
from miscreen.store.structures import StructureStore, read_store

from .conftest import SNAPSHOT, FaultProxy, Material, OptimadeServer

LI = 'elements HAS "Li"'
COMPARE = [S.ID, S.SOURCE, S.FORMULA, S.COMPOSITION, S.STRUCTURE, S.SPACEGROUP, "properties"]


def fetch_cli(base_url: str, out: Path, *extra: str) -> str:
    args = ["optimade", "--base-url", base_url, "--filter", LI, "--page-limit", "50"]
    result = CliRunner().invoke(app, [*args, "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    return result.output


def part_rows(store: Path) -> int:
    parts = [p for p in (store / "parts").glob("*.parquet") if ".failures." not in p.name]
    return sum(len(pd.read_parquet(p)) for p in parts)


def comparable(df: pd.DataFrame, base_url: str) -> pd.DataFrame:
    out = df[COMPARE].copy()
    out[S.SOURCE] = out[S.SOURCE].str.replace(base_url, "<server>", regex=False)
    return out.sort_values(S.ID).reset_index(drop=True)


@pytest.fixture(scope="module")
def clean(optimade_server: OptimadeServer, tmp_path_factory: pytest.TempPathFactory):
    """One uninterrupted fetch of the Li filter: the reference the other runs must equal."""
    optimade_server.ensure_running()
    out = tmp_path_factory.mktemp("clean") / "store"
    fetch_cli(optimade_server.base_url, out)
    return out, comparable(read_store(out), optimade_server.base_url)


def test_li_filter_returns_all_443_with_correct_compositions(
    clean, li_materials: dict[str, Material], optimade_server: OptimadeServer
) -> None:
    out, _ = clean
    df = read_store(out)
    assert len(df) == 443 and df[S.ID].is_unique
    assert set(df[S.ID]) == set(li_materials)
    for rid, js in zip(df[S.ID], df[S.STRUCTURE], strict=True):
        got = Structure.from_dict(json.loads(js)).composition
        assert got == Structure.from_dict(li_materials[rid].structure).composition, rid
    assert all(
        Composition(c).reduced_formula == f
        for c, f in zip(df[S.COMPOSITION], df[S.FORMULA], strict=True)
    )
    state = next(iter(read_json(out / "checkpoint.json")["sources"].values()))
    assert state["pages"] >= 5 and state["done"] and state["records"] == 443
    manifest = read_json(out / "manifest.json")
    meta = manifest["queries"][0]["meta"]
    assert meta["provider"]["prefix"] == "mstest" and meta["api_version"].startswith("1.")
    assert manifest["counts"]["records"] == 443
    assert manifest["packages"]["optimade"] != "not installed"
    assert (df[S.SOURCE] == f"optimade:{optimade_server.base_url}/v1/structures").all()


def test_server_stopped_mid_run_then_rerun_gives_exactly_the_clean_records(
    clean, live_optimade: OptimadeServer, tmp_path: Path
) -> None:
    out = tmp_path / "store"
    store = StructureStore(out)
    session = RetryingSession(RetryPolicy(attempts=2, base_delay=0.05, timeout=5))

    def stop_after_page_2(res, state) -> None:
        if res.index == 2:
            live_optimade.stop()

    with pytest.raises(FetchError, match=r"page 3 \(http://127.0.0.1.*re-run the same command"):
        fetch_database(
            store, Database("", live_optimade.base_url), LI, 50, session, on_page=stop_after_page_2
        )
    state = next(iter(store.checkpoint()["sources"].values()))
    assert state["next_index"] == 3 and not state["done"] and state["records"] == 150

    live_optimade.start()
    fetch_cli(live_optimade.base_url, out)
    assert part_rows(out) == 443  # no page was stored twice
    pd.testing.assert_frame_equal(comparable(read_store(out), live_optimade.base_url), clean[1])


def test_injected_429_500_and_slow_responses_are_retried(
    clean, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    fault_proxy.faults.extend(
        [
            ("status", 429, 1),
            ("status", 500, None),
            ("ok",),  # page 0: 429 (Retry-After 1), 500
            ("slow", 4.0),
            ("status", 503, None),
            ("status", 502, None),  # page 1: timeout, 503, 502
        ]
    )
    out = tmp_path / "store"
    fetch_cli(fault_proxy.url, out, "--timeout", "2", "--backoff", "0.05", "--attempts", "5")
    assert not fault_proxy.faults
    kinds = [k for _, _, k in fault_proxy.log]
    assert kinds[:7] == ["status", "status", "ok", "slow", "status", "status", "ok"]
    assert fault_proxy.log[1][0] - fault_proxy.log[0][0] >= 1.0  # waited as Retry-After asked
    assert part_rows(out) == 443
    upstream = comparable(read_store(out), fault_proxy.url)
    pd.testing.assert_frame_equal(upstream, clean[1])


def test_gives_up_with_a_message_naming_page_and_resume(fault_proxy: FaultProxy, tmp_path: Path):
    fault_proxy.faults.extend([("ok",), ("status", 500, None), ("status", 500, None)])
    args = ["optimade", "--base-url", fault_proxy.url, "--filter", LI, "--page-limit", "50"]
    result = CliRunner().invoke(
        app, [*args, "--out", str(tmp_path / "s"), "--attempts", "2", "--backoff", "0.01"]
    )
    assert result.exit_code == 1
    assert "could not fetch page 1" in result.output
    assert "gave up after 2 attempt(s)" in result.output and "HTTP 500" in result.output
    assert "re-run the same command to resume from page 1" in result.output


def test_killed_run_resumes_from_checkpoint(clean, fault_proxy: FaultProxy, tmp_path: Path) -> None:
    out = tmp_path / "store"
    fault_proxy.delay = 0.4
    cmd = [
        sys.executable,
        "-c",
        "import sys; from miscreen.cli.fetch import app; app()",
        "optimade",
        "--base-url",
        fault_proxy.url,
        "--filter",
        LI,
        "--page-limit",
        "50",
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            cp = out / "checkpoint.json"
            if cp.exists() and next(iter(read_json(cp)["sources"].values()))["next_index"] >= 2:
                break
            assert proc.poll() is None, "fetch finished before it could be killed"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    state = next(iter(read_json(out / "checkpoint.json")["sources"].values()))
    assert not state["done"] and 2 <= state["next_index"] < 9
    fault_proxy.delay = 0.0
    fetch_cli(fault_proxy.url, out)
    assert part_rows(out) == 443
    pd.testing.assert_frame_equal(comparable(read_store(out), fault_proxy.url), clean[1])
    assert not list((out / "parts").glob(".*.tmp"))


def test_rerun_of_a_finished_fetch_changes_nothing(clean, optimade_server) -> None:
    out, reference = clean
    optimade_server.ensure_running()
    output = fetch_cli(optimade_server.base_url, out)
    assert "443 records" in output
    pd.testing.assert_frame_equal(comparable(read_store(out), optimade_server.base_url), reference)


def test_duplicates_across_sources_are_flagged(live_optimade: OptimadeServer, tmp_path: Path):
    out = tmp_path / "store"
    snapshot_li = tmp_path / "mp_2018_li.jsonl"  # the Li rows only: the non-Li cost time
    with gzip.open(SNAPSHOT, "rt") as fh:
        snapshot_li.write_text("".join(line for line in fh if '"Li"' in line))
    result = CliRunner().invoke(
        app, ["local", "--path", str(snapshot_li), "--require-element", "Li", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    fetch_cli(live_optimade.base_url, out)
    df = read_store(out)
    assert len(df) == 886
    local = df[df[S.SOURCE] == "jsonl:mp_2018_li.jsonl"]
    remote = df[df[S.SOURCE].str.startswith("optimade:")]
    assert local["duplicate_of"].isna().all()
    assert remote["duplicate_of"].notna().all()
    assert (remote["duplicate_of_source"] == "jsonl:mp_2018_li.jsonl").all()
    same = (remote["duplicate_of"] == remote[S.ID]).mean()
    assert same > 0.97, same  # the rest match an identical structure listed under another id
    assert read_json(out / "manifest.json")["counts"]["cross_source_duplicates"] == 443
