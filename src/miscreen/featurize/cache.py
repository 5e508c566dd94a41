"""On-disk feature cache: one SQLite file, keyed by record fingerprint, group and version.

A fingerprint is the sha256 of everything a featurizer reads from a record (composition,
structure JSON, space group, lattice, Z), so a second run over the same structures finds
every group and recomputes nothing; bumping a featurizer's ``version`` invalidates only that
group. Only the parent process touches the file (workers return values), so there are no
concurrent writers; each batch is one transaction, so a killed run leaves a consistent file.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import numpy as np

FILENAME = "features.sqlite"


def fingerprint(
    composition: str,
    structure_json: str | None,
    spacegroup: float,
    lattice: Iterable[float],
    z: float,
) -> str:
    """sha256 of the record fields that features depend on."""
    parts = [composition, structure_json or "", _num(spacegroup), *map(_num, lattice), _num(z)]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _num(x: float) -> str:
    return "nan" if x is None or not math.isfinite(x) else repr(float(x))


class FeatureCache:
    """Group feature vectors stored per (fingerprint, group, version)."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / FILENAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS features (fp TEXT, grp TEXT, version TEXT, "
            "n INTEGER, data BLOB, meta TEXT, PRIMARY KEY (fp, grp, version))"
        )
        self._db.commit()

    def get_many(
        self, fps: list[str], group: str, version: str
    ) -> dict[str, tuple[np.ndarray, dict]]:
        """Cached (values, meta) for the fingerprints present."""
        out: dict[str, tuple[np.ndarray, dict]] = {}
        for start in range(0, len(fps), 500):
            batch = fps[start : start + 500]
            marks = ",".join("?" * len(batch))
            rows = self._db.execute(
                "SELECT fp, data, meta FROM features WHERE grp=? AND version=? "
                f"AND fp IN ({marks})",
                [group, version, *batch],
            )
            for fp, data, meta in rows:
                out[fp] = (np.frombuffer(data, dtype=np.float64).copy(), json.loads(meta))
        return out

    def put_many(self, items: list[tuple[str, str, str, np.ndarray, dict]]) -> None:
        """Store (fingerprint, group, version, values, meta) rows in one transaction."""
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO features VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (fp, g, v, len(vals), np.asarray(vals, np.float64).tobytes(), json.dumps(m))
                    for fp, g, v, vals, m in items
                ],
            )

    def close(self) -> None:
        self._db.close()
