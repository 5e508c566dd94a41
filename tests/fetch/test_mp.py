"""mp-api's real ``MPRester`` against a local summary server of emmet-core documents."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from miscreen import schema as S
from miscreen.atomic_io import read_json, read_table
from miscreen.cli.fetch import app
from miscreen.store.structures import read_store

from .conftest import MP_DB_VERSION, MP_KEY, Material, SummaryServer


def run(server: SummaryServer, out: Path, monkeypatch, key: str | None, *extra: str):
    monkeypatch.setenv("MP_API_ENDPOINT", server.url)
    if key is None:
        monkeypatch.delenv("MP_API_KEY", raising=False)
    else:
        monkeypatch.setenv("MP_API_KEY", key)
    return CliRunner().invoke(app, ["mp", "--out", str(out), "--page-size", "100", *extra])


def all_text(folder: Path) -> str:
    return "\n".join(p.read_bytes().decode("latin-1") for p in folder.rglob("*") if p.is_file())


def test_full_fetch_of_li_materials(
    summary_server: SummaryServer,
    li_materials: dict[str, Material],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "store"
    result = run(summary_server, out, monkeypatch, MP_KEY)
    assert result.exit_code == 0, result.output
    df = read_store(out)
    assert len(df) == 443 and df[S.ID].is_unique
    assert set(df[S.ID]) == set(li_materials)  # classic mp-N ids, not the API's AlphaIDs
    for row in df.itertuples():
        m = li_materials[row.id]
        assert (row.e_above_hull == m.e_above_hull) or (m.e_above_hull is None)
        assert row.database_version == MP_DB_VERSION
    assert set(df.columns) >= {
        *S.RECORD_COLUMNS,
        "band_gap",
        "is_stable",
        "theoretical",
        "fetched_at",
        "query",
    }
    pages = [r for r in summary_server.requests if r["path"].startswith("/materials")]
    assert [r["query"]["_page"] for r in pages] == [[str(n)] for n in range(1, 6)]
    assert all(r["query"]["elements"] == ["Li"] for r in pages)
    manifest = read_json(out / "manifest.json")
    assert manifest["queries"][0]["meta"]["database_version"] == MP_DB_VERSION
    assert manifest["packages"]["mp-api"] == "0.46.5"
    # the key went to the server in the header, and nowhere else
    assert all(r.get("x-api-key") == MP_KEY for r in pages)
    assert MP_KEY not in all_text(out)
    assert MP_KEY not in result.output and MP_KEY not in caplog.text


def test_filters_reach_the_api(
    summary_server: SummaryServer,
    li_materials: dict[str, Material],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = run(
        summary_server,
        tmp_path / "s",
        monkeypatch,
        MP_KEY,
        "--energy-above-hull",
        "0,0.05",
        "--nsites",
        "1,20",
    )
    assert result.exit_code == 0, result.output
    expected = {
        k
        for k, m in li_materials.items()
        if m.e_above_hull is not None and m.e_above_hull <= 0.05 and len(m.structure["sites"]) <= 20
    }
    assert expected and set(read_store(tmp_path / "s")[S.ID]) == expected


def test_missing_key_is_a_clear_error(
    summary_server: SummaryServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run(summary_server, tmp_path / "s", monkeypatch, None)
    assert result.exit_code == 1
    assert "MP_API_KEY is not set" in result.output and "export MP_API_KEY=" in result.output
    assert not summary_server.requests  # nothing was sent without a key


def test_rejected_key_is_a_clear_error_without_the_key(
    summary_server: SummaryServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = "WRONGkey0123456789abcdefghijklmn"
    result = run(summary_server, tmp_path / "s", monkeypatch, wrong)
    assert result.exit_code == 1
    assert "rejected the API key in MP_API_KEY" in result.output
    assert "export MP_API_KEY=" in result.output
    assert wrong not in result.output and wrong not in caplog.text
    assert wrong not in all_text(tmp_path / "s") if (tmp_path / "s").exists() else True
    short = run(summary_server, tmp_path / "t", monkeypatch, "tooshort")
    assert short.exit_code == 1 and "not a valid key (32 characters)" in short.output


def test_outage_then_rerun_resumes(
    summary_server: SummaryServer,
    li_materials: dict[str, Material],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "store"
    summary_server.fail_pages = {3}
    result = run(summary_server, out, monkeypatch, MP_KEY, "--attempts", "2", "--backoff", "0")
    assert result.exit_code == 1
    assert "could not fetch page 2" in result.output and "HTTP 503" in result.output
    assert "re-run the same command" in result.output
    summary_server.fail_pages = set()
    summary_server.requests.clear()
    result = run(summary_server, out, monkeypatch, MP_KEY)
    assert result.exit_code == 0, result.output
    pages = [
        r["query"]["_page"][0]
        for r in summary_server.requests
        if r["path"].startswith("/materials")
    ]
    assert pages == ["3", "4", "5"]  # resumed: pages 1 and 2 were not fetched again
    df = read_store(out)
    assert len(df) == 443 and set(df[S.ID]) == set(li_materials)


# -- issue 27: the key never leaves, structures are data ----------------------------------
def echoing_docs(summary_docs: list[dict]) -> list[dict]:
    """Three Li documents: one whose structure names the key as an element (the failure
    reason would quote it), one whose formula is the key, one with a module in a site
    property."""
    li = [d for d in summary_docs if "Li" in d["elements"]][:3]
    docs = [json.loads(json.dumps(d)) for d in li]
    docs[0]["structure"]["sites"][0]["species"][0]["element"] = MP_KEY
    docs[1]["formula_pretty"] = MP_KEY
    docs[2]["structure"]["sites"][0]["properties"] = {"x": {"@module": "this", "@class": "s"}}
    return docs


def test_a_server_echoing_the_key_never_gets_it_into_the_store(
    summary_docs: list[dict],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.delitem(sys.modules, "this", raising=False)
    server = SummaryServer(echoing_docs(summary_docs)).start()
    try:
        out = tmp_path / "store"
        result = run(server, out, monkeypatch, MP_KEY)
    finally:
        assert server.server is not None
        server.server.close()
    assert result.exit_code == 0, result.output
    failures = read_table(out / "failures.parquet").set_index(S.ID)["reason"]
    assert len(failures) == 2
    assert any("element '<MP_API_KEY>'" in r for r in failures), list(failures)
    assert any("serialized object" in r for r in failures)
    records = read_store(out)
    assert list(records["mp_formula"]) == ["<MP_API_KEY>"]
    assert MP_KEY not in all_text(out)
    assert MP_KEY not in result.output and MP_KEY not in caplog.text
    assert "this" not in sys.modules  # the site property imported nothing


@pytest.mark.parametrize(
    "endpoint", ["http://api.materialsproject.org/", "http://10.0.0.1:8080/", "ftp://x/"]
)
def test_the_key_is_not_sent_over_plain_http_to_another_machine(
    endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MP_API_KEY", MP_KEY)
    result = CliRunner().invoke(app, ["mp", "--out", str(tmp_path / "s"), "--endpoint", endpoint])
    assert result.exit_code == 1
    assert "refusing to send MP_API_KEY" in result.output and "https://" in result.output
    assert not (tmp_path / "s" / "checkpoint.json").exists()


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://api.materialsproject.org/",
        "http://127.0.0.1:9/",
        "http://localhost/",
        "http://[::1]/",
    ],
)
def test_https_and_this_machine_are_allowed(endpoint: str) -> None:
    from miscreen.fetch.mp import check_key_transport

    check_key_transport(endpoint)
