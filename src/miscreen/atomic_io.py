"""The one module that owns the filesystem: atomic writes of tables, JSON and manifests.

Every artifact is written to a temporary file in the destination folder and renamed into
place, so a killed job never leaves a half-written file behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

TRACKED_PACKAGES = (
    "miscreen",
    "pymatgen",
    "matminer",
    "scikit-learn",
    "numpy",
    "pandas",
    "pyarrow",
    "mp-api",
    "optimade",
    "joblib",
)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are for sharing
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: Path, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_table(df: pd.DataFrame, path: Path) -> Path:
    """Write a table as Parquet or CSV (by suffix), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        elif path.suffix == ".csv":
            text = _floats_as_text(df)
            text.to_csv(tmp, index=False, float_format=CSV_FLOAT, lineterminator="\n")
        else:
            raise ValueError(f"cannot write table to {path}: use .parquet or .csv")
    return path


CSV_FLOAT = "%.6g"


def _floats_as_text(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its float columns as the text pandas writes for ``float_format=CSV_FLOAT``
    (NaN as an empty field), formatted twice as fast as pandas does it value by value: a
    million-row ``candidates.csv`` is written by one process after the merge."""
    floats = [c for c, t in df.dtypes.items() if isinstance(t, np.dtype) and t.kind == "f"]
    if not floats or df.columns.has_duplicates:  # left to pandas' float_format
        return df
    out = df.copy(deep=False)
    for col in floats:
        values = df[col].to_numpy()
        text = np.array([CSV_FLOAT % v for v in values.tolist()], dtype=object)
        text[np.isnan(values)] = ""
        out[col] = text
    return out


def read_table(path: Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"table {path} does not exist")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path, keep_default_na=True)
    raise ValueError(f"cannot read table {path}: use .parquet or .csv")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def sha256_frame(df: pd.DataFrame) -> str:
    """A content hash of a table (values and column names), stable across runs."""
    h = hashlib.sha256()
    h.update("\x1f".join(map(str, df.columns)).encode())
    h.update(pd.util.hash_pandas_object(df.astype(str), index=False).values.tobytes())
    return h.hexdigest()


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit(cwd: Path | None = None) -> str | None:
    try:
        res = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd or Path.cwd(),
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() or None


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def base_manifest(config: dict[str, Any] | None = None, seed: int | None = None) -> dict[str, Any]:
    """The provenance every artifact's manifest starts from."""
    return {
        "created_at": now_utc(),
        "argv": sys.argv,
        "config": config,
        "seed": seed,
        "git_commit": git_commit(),
        "packages": package_versions(),
        "platform": platform.platform(),
    }


def file_entry(path: Path) -> dict[str, str]:
    return {"path": str(path), "sha256": sha256_file(path)}


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")
