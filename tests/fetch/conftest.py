"""Fixtures for the fetch tests: the mp-2018 snapshot, a real OPTIMADE reference server
(uvicorn + mongomock) loaded with it, a fault-injecting proxy, and a Materials Project
summary server whose documents are built with emmet-core. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

HERE = Path(__file__).resolve()
SHARED = Path(os.environ.get("MISCREEN_MIRROR", HERE.parents[2] / "../shared/data")).resolve()
FIXTURES = SHARED.parent / "fixtures" / "optimade"
SNAPSHOT = SHARED / "mp-2018" / "mp_2018_matminer.jsonl.gz"
MP_KEY = "miscreenTESTkey0123456789abcdefX"  # 32 characters, as mp-api requires
MP_DB_VERSION = "2025.09.25"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Material:
    material_id: str
    structure: dict[str, Any]
    e_above_hull: float | None
    band_gap: float | None

    @property
    def has_li(self) -> bool:
        return any(
            sp["element"] == "Li" for site in self.structure["sites"] for sp in site["species"]
        )


@pytest.fixture(scope="session")
def snapshot() -> list[Material]:
    """All 6,317 materials of the mp-2018 snapshot."""
    from miscreen.fetch.jsonl_files import iter_jsonl

    if not SNAPSHOT.is_file():
        raise RuntimeError(f"mp-2018 snapshot missing at {SNAPSHOT}; set MISCREEN_MIRROR")
    return [
        Material(o["material_id"], o["structure"], o.get("e_above_hull"), o.get("band_gap"))
        for _, o in iter_jsonl(SNAPSHOT)
    ]


@pytest.fixture(scope="session")
def li_materials(snapshot: list[Material]) -> dict[str, Material]:
    li = {m.material_id: m for m in snapshot if m.has_li}
    assert len(li) == 443
    return li


# -- OPTIMADE reference server ----------------------------------------------------------
@pytest.fixture(scope="session")
def optimade_jsonl(snapshot: list[Material], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The snapshot as an OPTIMADE JSONL file (converted by optimade's pymatgen adapter)."""
    from optimade.adapters.structures.pymatgen import from_pymatgen
    from pymatgen.core import Structure

    path = tmp_path_factory.mktemp("optimade") / "mp2018.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(json.dumps({"x-optimade": {"meta": {"api_version": "1.1.0"}}}) + "\n")
        for m in snapshot:
            attrs = from_pymatgen(Structure.from_dict(m.structure)).model_dump(mode="json")
            attrs["last_modified"] = {"$date": "2018-06-01T00:00:00Z"}
            attrs["immutable_id"] = m.material_id
            entry = {"type": "structures", "id": m.material_id, "attributes": attrs}
            fh.write(json.dumps(entry) + "\n")
    return path


@dataclass
class OptimadeServer:
    """``optimade.server.main:app`` under uvicorn in a subprocess on a fixed port."""

    jsonl: Path
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        config = self.workdir / "optimade_config.json"
        config.write_text(
            json.dumps(
                {
                    "base_url": self.base_url,
                    "insert_test_data": False,
                    "insert_from_jsonl": str(self.jsonl),
                    "database_backend": "mongomock",
                    "page_limit": 20,
                    "page_limit_max": 500,
                    "log_dir": str(self.workdir),
                    "provider": {
                        "prefix": "mstest",
                        "name": "miscreen test",
                        "description": "mp-2018 snapshot for tests",
                    },
                }
            )
        )
        env = {
            **os.environ,
            "OPTIMADE_CONFIG_FILE": str(config),
            "OPTIMADE_INSERT_TEST_DATA": "false",
            "OPTIMADE_INSERT_FROM_JSONL": str(self.jsonl),
        }
        cmd = [sys.executable, "-m", "uvicorn", "optimade.server.main:app"]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"]
        log = open(self.workdir / "uvicorn.log", "ab")
        self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log, cwd=self.workdir)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"OPTIMADE server exited: {(self.workdir / 'uvicorn.log').read_text()[-3000:]}"
                )
            try:
                with urllib.request.urlopen(f"{self.base_url}/v1/info", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("OPTIMADE server did not start within 120 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def ensure_running(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.start()


@pytest.fixture(scope="session")
def optimade_server(
    optimade_jsonl: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OptimadeServer]:
    server = OptimadeServer(optimade_jsonl, tmp_path_factory.mktemp("optimade-server"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def live_optimade(optimade_server: OptimadeServer) -> OptimadeServer:
    """The session server, restarted first if an earlier test stopped it."""
    optimade_server.ensure_running()
    return optimade_server


# -- fault-injecting proxy --------------------------------------------------------------
class _Serving:
    """A ThreadingHTTPServer on 127.0.0.1 run in a daemon thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class FaultProxy:
    """Forwards GETs to ``upstream``; the next queued fault is applied to each request:
    ``("status", code, retry_after)``, ``("slow", seconds)`` or ``("ok",)``."""

    upstream: str
    faults: deque = field(default_factory=deque)
    log: list[tuple[float, str, str]] = field(default_factory=list)
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: _Serving | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                with proxy.lock:
                    fault = proxy.faults.popleft() if proxy.faults else ("ok",)
                    proxy.log.append((time.monotonic(), self.path, fault[0]))
                if fault[0] == "status":
                    self.send_response(fault[1])
                    if fault[2] is not None:
                        self.send_header("Retry-After", str(fault[2]))
                    body = json.dumps({"errors": [{"detail": "injected"}]}).encode()
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if fault[0] == "slow":
                    time.sleep(fault[1])
                elif proxy.delay:
                    time.sleep(proxy.delay)
                try:
                    with urllib.request.urlopen(proxy.upstream + self.path, timeout=60) as r:
                        body, status = r.read(), r.status
                except urllib.error.HTTPError as exc:
                    body, status = exc.read(), exc.code
                body = body.replace(proxy.upstream.encode(), proxy.url.encode())
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = _Serving(Handler)
        return self

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


@pytest.fixture
def fault_proxy(live_optimade: OptimadeServer) -> Iterator[FaultProxy]:
    proxy = FaultProxy(live_optimade.base_url).start()
    yield proxy
    proxy.close()


# -- static files (providers list, index meta-database) ---------------------------------
@pytest.fixture
def static_server() -> Iterator[tuple[str, dict[str, bytes]]]:
    """Serves ``routes[path] = body`` as JSON on 127.0.0.1; unknown paths give 404."""
    routes: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            body = routes.get(urlsplit(self.path).path)
            self.send_response(200 if body is not None else 404)
            body = body if body is not None else b'{"errors": [{"detail": "not found"}]}'
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = _Serving(Handler)
    yield srv.url, routes
    srv.close()


# -- Materials Project summary server ---------------------------------------------------
@pytest.fixture(scope="session")
def summary_docs(snapshot: list[Material]) -> list[dict[str, Any]]:
    """emmet-core ``SummaryDoc``s (JSON) for the 443 Li materials and 57 others."""
    from emmet.core.summary import SummaryDoc
    from pymatgen.core import Structure

    chosen = [m for m in snapshot if m.has_li] + [m for m in snapshot if not m.has_li][:57]
    docs = []
    for m in chosen:
        doc = SummaryDoc.from_structure(
            meta_structure=Structure.from_dict(m.structure),
            material_id=m.material_id,
            energy_above_hull=m.e_above_hull,
            band_gap=m.band_gap,
            is_stable=m.e_above_hull == 0,
            theoretical=False,
            deprecated=False,
        )
        docs.append(doc.model_dump(mode="json"))
    return docs


def _floats(q: dict[str, list[str]], name: str) -> tuple[float, float] | None:
    if f"{name}_min" not in q and f"{name}_max" not in q:
        return None
    lo = float(q.get(f"{name}_min", ["-inf"])[0])
    hi = float(q.get(f"{name}_max", ["inf"])[0])
    return lo, hi


def summary_matches(doc: dict[str, Any], q: dict[str, list[str]]) -> bool:
    """The summary endpoint's filtering, for the parameters miscreen sends."""
    if "elements" in q and not set(q["elements"][0].split(",")) <= set(doc["elements"]):
        return False
    if "chemsys" in q and q["chemsys"][0] not in doc["chemsys"].split(","):
        return False
    for name in ("energy_above_hull", "band_gap", "nsites"):
        rng = _floats(q, name)
        if rng is not None:
            value = doc.get(name)
            if value is None or not rng[0] <= value <= rng[1]:
                return False
    for name in ("is_stable", "theoretical"):
        if name in q and doc[name] != (q[name][0].lower() == "true"):
            return False
    return True


@dataclass
class SummaryServer:
    """``/heartbeat`` and ``/materials/summary/`` of the Materials Project API, in-process."""

    docs: list[dict[str, Any]]
    fail_pages: set[int] = field(default_factory=set)
    requests: list[dict[str, Any]] = field(default_factory=list)
    server: _Serving | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url + "/"

    def start(self) -> SummaryServer:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def reply(self, status: int, obj: Any) -> None:
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                q = parse_qs(parts.query)
                api.requests.append({"path": parts.path, "query": q, **dict(self.headers)})
                if parts.path == "/heartbeat":
                    version = {"db_version": MP_DB_VERSION, "version": "0.87.3"}
                    return self.reply(200, {**version, "access_controlled_batch_ids": []})
                if parts.path.rstrip("/") != "/materials/summary":
                    return self.reply(404, {"detail": "Not Found"})
                if self.headers.get("x-api-key") != MP_KEY:
                    return self.reply(401, {"detail": "Invalid authentication credentials"})
                page = int(q.get("_page", ["0"])[0])
                if page in api.fail_pages:
                    return self.reply(503, {"detail": "injected outage"})
                hits = [d for d in api.docs if summary_matches(d, q)]
                if "_sort_fields" in q:
                    hits.sort(key=lambda d: d[q["_sort_fields"][0].lstrip("-")])
                limit = int(q.get("_per_page", q.get("_limit", ["1000"]))[0])
                skip = (page - 1) * limit if page else int(q.get("_skip", ["0"])[0])
                fields = q.get("_fields", [""])[0].split(",")
                data = [
                    {k: v for k, v in d.items() if k in fields} if fields != [""] else d
                    for d in hits[skip : skip + limit]
                ]
                self.reply(200, {"data": data, "meta": {"total_doc": len(hits)}})

        self.server = _Serving(Handler)
        return self


@pytest.fixture
def summary_server(summary_docs: list[dict[str, Any]]) -> Iterator[SummaryServer]:
    server = SummaryServer(summary_docs).start()
    yield server
    assert server.server is not None
    server.server.close()
