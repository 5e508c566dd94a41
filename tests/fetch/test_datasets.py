"""The data registry: cache, then mirrors, then a hash-checked download."""

from __future__ import annotations

import http.server
import shutil
import threading
from pathlib import Path

import pytest

from miscreen.fetch import datasets
from miscreen.fetch.datasets import DataNotFoundError, Dataset, RemoteFile, fetch_file

from .conftest import SHARED


def test_obelix_from_mirror_is_hash_checked():
    path = fetch_file("obelix", "all.csv")
    assert path == SHARED / "obelix" / "all.csv"
    assert datasets.sha256_file(path) == datasets.OBELIX.file("all.csv").sha256


def test_corrupt_cache_file_is_never_used(tmp_path, monkeypatch):
    bad = tmp_path / "obelix" / "train.csv"
    bad.parent.mkdir(parents=True)
    bad.write_text("ID,not the real file\n")
    monkeypatch.setenv("MISCREEN_DATA_DIR", str(tmp_path))
    assert fetch_file("obelix", "train.csv") == SHARED / "obelix" / "train.csv"


def test_missing_everywhere_names_dataset_url_and_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("MISCREEN_MIRROR", str(tmp_path / "nowhere"))
    with pytest.raises(DataNotFoundError) as err:
        fetch_file("obelix", "test.csv", download=False)
    msg = str(err.value)
    for needle in (
        "obelix",
        "test.csv",
        "raw.githubusercontent.com/NRC-Mila/OBELiX",
        "MISCREEN_DATA_DIR",
        "MISCREEN_MIRROR",
    ):
        assert needle in msg


@pytest.fixture
def http_server(tmp_path):
    """A real HTTP server on 127.0.0.1 serving tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _register(monkeypatch, url: str, sha: str) -> None:
    ds = Dataset("toy", (RemoteFile("train.csv", sha, f"{url}/train.csv"),), "CC0", "toy", url)
    monkeypatch.setitem(datasets.DATASETS, "toy", ds)


def test_download_is_verified_and_moved_into_cache(http_server, tmp_path, monkeypatch):
    root, url = http_server
    shutil.copy(SHARED / "obelix" / "train.csv", root / "train.csv")
    _register(monkeypatch, url, datasets.OBELIX.file("train.csv").sha256)
    cache = tmp_path / "cache"
    monkeypatch.setenv("MISCREEN_DATA_DIR", str(cache))
    monkeypatch.setenv("MISCREEN_MIRROR", "")
    path = fetch_file("toy", "train.csv")
    assert path == cache / "toy" / "train.csv"
    assert datasets.sha256_file(path) == datasets.OBELIX.file("train.csv").sha256


def test_download_with_wrong_hash_leaves_no_file(http_server, tmp_path, monkeypatch):
    root, url = http_server
    (root / "train.csv").write_text("tampered\n")
    _register(monkeypatch, url, datasets.OBELIX.file("train.csv").sha256)
    cache = tmp_path / "cache"
    monkeypatch.setenv("MISCREEN_DATA_DIR", str(cache))
    monkeypatch.setenv("MISCREEN_MIRROR", "")
    with pytest.raises(DataNotFoundError, match=r"download from http://127\.0\.0\.1"):
        fetch_file("toy", "train.csv")
    assert not any(Path(cache).rglob("train.csv"))
