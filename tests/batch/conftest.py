"""A small trained run and candidate pool shared by the batch tests.

Training: 150 OBELiX train rows (composition preset, 20 trees). Candidates: pymatgen's
examples, 120 Li structures of the mp-2018 snapshot (JSONL), a structure store of 60
matbench-dielectric Li structures, and a CSV with bad rows and an id repeated from the JSONL.
The reference is ``miscreen run``: train, then the unsharded screen, then the report.
``slurm`` (a real single-node SLURM cluster, ``slurm_cluster.py``) is in ``tests/conftest.py``.
"""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from miscreen.config import Config, load_config
from tests.conftest import SHARED

CONFIG = """
run_name: batch
seed: 0
results_dir: {root}/results/{name}
models_dir: {root}/models
data: {{train: {root}/train.csv, test_split: null}}
features: {{preset: composition}}
model: {{kind: extra_trees, n_estimators: 20, cv_folds: 2}}
candidates:
  - kind: pymatgen
  - kind: jsonl
    path: {root}/mp.jsonl
  - kind: store
    path: {root}/store
  - kind: csv
    path: {root}/cands.csv
batch: {{chunk_size: {chunk}}}
{extra}
"""


@dataclass
class BatchRun:
    """The shared root, a config writer and the reference outputs of the unsharded screen."""

    root: Path
    reference: Path

    def config(self, name: str, chunk: int = 40, extra: str = "") -> Path:
        """A config of the same run whose outputs go to ``results/<name>/``."""
        path = self.root / f"{name}.yaml"
        text = CONFIG.format(root=self.root, name=name, chunk=chunk, extra=extra)
        path.write_text(text)
        return path

    def load(self, name: str, chunk: int = 40) -> Config:
        return load_config(self.config(name, chunk))


def _jsonl_rows(path: Path, n: int, id_field: str) -> list[dict]:
    """The first ``n`` rows of a snapshot whose structure contains Li."""
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            obj = json.loads(line)
            sites = obj["structure"]["sites"]
            if any(sp["element"] == "Li" for s in sites for sp in s["species"]):
                out.append(obj)
                if len(out) == n:
                    break
    assert len(out) == n, f"{path} has fewer than {n} Li rows"
    return out


def _write_training(root: Path) -> None:
    """150 uncensored OBELiX train rows as ``composition,log10_sigma``."""
    raw = pd.read_csv(SHARED / "obelix" / "train.csv")
    sigma = pd.to_numeric(raw["Ionic conductivity (S cm-1)"], errors="coerce")
    ok = sigma > 0
    rows = pd.DataFrame(
        {
            "composition": raw.loc[ok, "True Composition"],
            "log10_sigma": sigma[ok].map(math.log10),
        }
    ).head(150)
    rows.to_csv(root / "train.csv", index=False)


def _write_candidates(root: Path) -> None:
    from miscreen.fetch.local_store import fetch_local_into
    from miscreen.store.structures import StructureStore

    mp = _jsonl_rows(SHARED / "mp-2018" / "mp_2018_matminer.jsonl.gz", 120, "material_id")
    (root / "mp.jsonl").write_text("".join(json.dumps(r) + "\n" for r in mp))
    mbd = _jsonl_rows(SHARED / "matbench-dielectric" / "matbench_dielectric.jsonl.gz", 60, "row")
    (root / "mbd.jsonl").write_text("".join(json.dumps(r) + "\n" for r in mbd))
    store = StructureStore(root / "store")
    fetch_local_into(store, root / "mbd.jsonl", "row", "mbd-", ("Li",))
    store.finalize(config={"test": True})
    (root / "cands.csv").write_text(
        "id,composition,structure\n"
        "ok1,Li6PS5Cl,\n"
        "bad-formula,Li3(Mo8S8O8(OH)8(HWO5(H2O)))*(H2O)18,\n"
        "no-li,NaCl,\n"
        "missing-cif,,nowhere.cif\n"
        f"{mp[0]['material_id']},Li2O,\n"
    )


@pytest.fixture(scope="session")
def batch_run(tmp_path_factory: pytest.TempPathFactory) -> BatchRun:
    from typer.testing import CliRunner

    from miscreen.cli import app

    root = tmp_path_factory.mktemp("batch")
    _write_training(root)
    _write_candidates(root)
    run = BatchRun(root, root / "results" / "reference" / "batch")
    result = CliRunner().invoke(app, ["run", str(run.config("reference"))])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return run
