"""Energies per atom from a universal potential, cached on disk: CHGNet 0.3.0 (the weights in
its wheel) on the CPU, single points or short relaxations, stored per structure fingerprint
and setting in ``energies.sqlite`` (beside the feature cache) so that no structure is
computed twice across runs.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from pymatgen.core import Structure

from miscreen.potentials import load_chgnet

FILENAME = "energies.sqlite"

Potential = Callable[[list[Structure]], list[float]]  # -> energy per atom, eV


def fingerprint(structure: Structure) -> str:
    """sha256 of the structure's dict (species, lattice, positions, occupancies)."""
    text = json.dumps(structure.as_dict(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class EnergyCache:
    """Energies per atom stored per (fingerprint, setting) in one SQLite file."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / FILENAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS energies (fp TEXT, setting TEXT, energy REAL, "
            "seconds REAL, PRIMARY KEY (fp, setting))"
        )
        self._db.commit()

    def get_many(self, fps: list[str], setting: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for start in range(0, len(fps), 500):
            batch = fps[start : start + 500]
            marks = ",".join("?" * len(batch))
            rows = self._db.execute(
                f"SELECT fp, energy FROM energies WHERE setting=? AND fp IN ({marks})",
                [setting, *batch],
            )
            out.update({fp: math.nan if e is None else float(e) for fp, e in rows})  # NaN: NULL
        return out

    def put_many(self, items: list[tuple[str, str, float, float]]) -> None:
        """Store (fingerprint, setting, energy per atom, seconds) rows in one transaction."""
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO energies VALUES (?, ?, ?, ?)", items)

    def close(self) -> None:
        self._db.close()


def chgnet_model() -> object:
    """The CHGNet 0.3.0 model shipped in the wheel, on the CPU, loaded once per process
    (:func:`miscreen.potentials.load_chgnet`, shared with MD and generation)."""
    return load_chgnet("cpu", "0.3.0")


def chgnet_potential(relax_steps: int = 0, batch_size: int = 8) -> Potential:
    """Energies per atom from CHGNet: single points, or relaxations (positions and cell,
    FIRE, fmax 0.1 eV/Å) of at most ``relax_steps`` steps."""

    def energies(structures: list[Structure]) -> list[float]:
        model = chgnet_model()
        if relax_steps <= 0:
            preds = model.predict_structure(structures, batch_size=batch_size)  # type: ignore[attr-defined]
            preds = [preds] if isinstance(preds, dict) else preds
            return [float(p["e"]) for p in preds]
        from chgnet.model import StructOptimizer

        opt = StructOptimizer(model=model, use_device="cpu")
        out = []
        for s in structures:
            res = opt.relax(s, steps=relax_steps, fmax=0.1, verbose=False)
            out.append(float(res["trajectory"].energies[-1]) / len(s))
        return out

    return energies


class EnergyCalculator:
    """A potential with an on-disk cache (``cache_dir``; None: memory only) and a clock."""

    def __init__(
        self,
        potential: Potential | None = None,
        setting: str = "chgnet-0.3.0-static",
        cache_dir: Path | None = None,
    ) -> None:
        self.potential = potential or chgnet_potential()
        self.setting = setting
        self.cache = EnergyCache(cache_dir) if cache_dir is not None else None
        self.memory: dict[str, float] = {}
        self.seconds = 0.0
        self.computed = 0

    def energies(self, structures: dict[str, Structure]) -> dict[str, float]:
        """Energy per atom by id; computed only for fingerprints not yet cached."""
        fps = {rid: fingerprint(s) for rid, s in structures.items()}
        missing = [fp for fp in set(fps.values()) if fp not in self.memory]
        if self.cache is not None and missing:
            self.memory.update(self.cache.get_many(missing, self.setting))
        todo = {}
        for rid, fp in fps.items():
            if fp not in self.memory:
                todo.setdefault(fp, structures[rid])
        if todo:
            start = time.perf_counter()
            values = self.potential(list(todo.values()))
            spent = time.perf_counter() - start
            self.seconds += spent
            self.computed += len(todo)
            self.memory.update(zip(todo, values, strict=True))
            if self.cache is not None:
                each = spent / len(todo)
                self.cache.put_many(
                    [(fp, self.setting, e, each) for fp, e in zip(todo, values, strict=True)]
                )
        return {rid: self.memory[fp] for rid, fp in fps.items()}

    @property
    def seconds_per_structure(self) -> float:
        return self.seconds / self.computed if self.computed else float("nan")
