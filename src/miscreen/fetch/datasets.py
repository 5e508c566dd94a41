"""Every remote dataset, declared once, and the one function that finds its files.

Lookup order for a file: the cache directory (``MISCREEN_DATA_DIR``, default ``data/``),
then read-only mirror directories (``MISCREEN_MIRROR``, an ``os.pathsep``-separated list),
then a download (pooch: temporary file, sha256 check, move into place, bounded retries).
A file whose sha256 does not match is never used.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from miscreen.atomic_io import sha256_file
from miscreen.errors import UserError

log = logging.getLogger(__name__)

OBELIX_COMMIT = "4eaac889809dd489e3bae468c45d5c0e02b9147a"
_OBELIX_URL = (
    f"https://raw.githubusercontent.com/NRC-Mila/OBELiX/{OBELIX_COMMIT}/data/downloads/{{}}"
)


@dataclass(frozen=True)
class RemoteFile:
    filename: str
    sha256: str
    url: str | None  # None: no single upstream file (assembled snapshot); mirror only


@dataclass(frozen=True)
class Dataset:
    name: str
    files: tuple[RemoteFile, ...]
    license: str
    citation: str
    homepage: str

    def file(self, filename: str) -> RemoteFile:
        for f in self.files:
            if f.filename == filename:
                return f
        known = ", ".join(f.filename for f in self.files)
        raise KeyError(f"dataset {self.name!r} has no file {filename!r} (known: {known})")


OBELIX = Dataset(
    name="obelix",
    files=(
        RemoteFile(
            "all.csv",
            "54f6265ef84d16a919d08c6815f14b0fd7465fa00090bee2511c16c042e57f3c",
            _OBELIX_URL.format("all.csv"),
        ),
        RemoteFile(
            "train.csv",
            "01d87779862807e24bc45bb2c759852f892390b99f9340f13906c54805aa8776",
            _OBELIX_URL.format("train.csv"),
        ),
        RemoteFile(
            "test.csv",
            "b2c266eb74e22f403743d52959bea7c43b1531a850994870a70dd909200e5297",
            _OBELIX_URL.format("test.csv"),
        ),
        RemoteFile(
            "all_cifs.tar.gz",
            "bfa2a3c92e3b8ca1b9859992e686c9e19f98924e7ff369c05db7006548217d49",
            _OBELIX_URL.format("all_cifs.tar.gz"),
        ),
    ),
    license="CC BY 4.0",
    citation=(
        "F. Therrien et al., OBELiX: A Curated Dataset of Crystal Structures and "
        "Experimentally Measured Ionic Conductivities for Lithium Solid-State Electrolytes, "
        "Digital Discovery (2026), arXiv:2502.14234"
    ),
    homepage="https://github.com/NRC-Mila/OBELiX",
)

MP_2018 = Dataset(
    name="mp-2018",
    files=(
        RemoteFile(
            "mp_2018_matminer.jsonl.gz",
            "10b4d9c6e9850322ad7f7e1aaa3f830e04c4ead71539194b5404d3a03adbf93f",
            None,  # assembled offline snapshot; online, use `miscreen fetch mp`
        ),
    ),
    license="Materials Project data CC BY 4.0; assembled from matminer 0.4.2 datasets (BSD)",
    citation=(
        "A. Jain et al., The Materials Project: A materials genome approach to accelerating "
        "materials innovation, APL Materials 1, 011002 (2013)"
    ),
    homepage="https://materialsproject.org",
)

MATBENCH_DIELECTRIC = Dataset(
    name="matbench-dielectric",
    files=(
        RemoteFile(
            "matbench_dielectric.jsonl.gz",
            "955ed88b8d96b77e16f932456f4a29c84f3cae2af355489ad5760ee0dc76fb1e",
            None,  # repackaged from the crystal-toolkit wheel; mirror only
        ),
    ),
    license="Materials Project data CC BY 4.0; matbench (modified BSD)",
    citation=(
        "A. Dunn et al., Benchmarking materials property prediction methods: the Matbench "
        "test set and Automatminer reference algorithm, npj Comput. Mater. 6, 138 (2020)"
    ),
    homepage="https://matbench.materialsproject.org",
)

DATASETS: dict[str, Dataset] = {d.name: d for d in (OBELIX, MP_2018, MATBENCH_DIELECTRIC)}


class DataNotFoundError(UserError, FileNotFoundError):
    """A registered file could be found neither in the cache, a mirror, nor upstream."""


def data_dir() -> Path:
    """The default data folder: ``MISCREEN_DATA_DIR``, else ``data`` (a run passes its own)."""
    return Path(os.environ.get("MISCREEN_DATA_DIR") or "data")


def mirror_dirs() -> list[Path]:
    raw = os.environ.get("MISCREEN_MIRROR", "")
    return [Path(p) for p in raw.split(os.pathsep) if p.strip()]


def _matches(path: Path, spec: RemoteFile) -> bool:
    if not path.is_file():
        return False
    actual = sha256_file(path)
    if actual != spec.sha256:
        log.warning(
            "ignoring %s: sha256 %s does not match the registered %s", path, actual, spec.sha256
        )
        return False
    return True


def _download(spec: RemoteFile, dest_dir: Path, retries: int = 3) -> Path:
    import pooch

    dest_dir.mkdir(parents=True, exist_ok=True)
    fetcher = pooch.create(
        path=dest_dir,
        base_url="",
        registry={spec.filename: f"sha256:{spec.sha256}"},
        urls={spec.filename: spec.url},
        retry_if_failed=retries,
    )
    downloader = pooch.HTTPDownloader(timeout=60, progressbar=False)
    return Path(fetcher.fetch(spec.filename, downloader=downloader))


def fetch_file(
    dataset: str, filename: str, *, download: bool = True, folder: Path | None = None
) -> Path:
    """Return a local, hash-verified path to ``filename`` of ``dataset``; downloads go to
    ``folder`` (default :func:`data_dir`)."""
    ds = DATASETS.get(dataset)
    if ds is None:
        raise KeyError(f"unknown dataset {dataset!r}; registered: {', '.join(DATASETS)}")
    spec = ds.file(filename)
    folder = Path(folder) if folder is not None else data_dir()
    cached = folder / ds.name / spec.filename
    if _matches(cached, spec):
        return cached
    for mirror in mirror_dirs():
        candidate = mirror / ds.name / spec.filename
        if _matches(candidate, spec):
            return candidate
    tried = [str(cached)] + [str(m / ds.name / spec.filename) for m in mirror_dirs()]
    if download and spec.url:
        try:
            return _download(spec, folder / ds.name)
        except Exception as exc:  # network errors, hash mismatch: all mean "not available"
            reason = f"download from {spec.url} failed: {exc}"
    else:
        reason = "no upstream URL (mirror-only snapshot)" if not spec.url else "download disabled"
    raise DataNotFoundError(
        f"dataset {ds.name!r} file {spec.filename!r} not found. Looked in: {', '.join(tried)}; "
        f"{reason}. Upstream: {spec.url or ds.homepage}. Set MISCREEN_DATA_DIR (cache) or "
        f"MISCREEN_MIRROR (read-only mirror directories holding {ds.name}/{spec.filename})."
    )
