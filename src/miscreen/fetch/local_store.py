"""``miscreen fetch local``: a CIF folder or a JSONL snapshot of pymatgen structures as one
page of a structure store (skipped when that page is already there, so a rerun is free)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from miscreen.atomic_io import sha256_file
from miscreen.fetch.cif_files import load_cif_dir
from miscreen.fetch.jsonl_files import load_jsonl
from miscreen.store.structures import SourceQuery, StructureStore

log = logging.getLogger(__name__)


def fetch_local_into(
    store: StructureStore, path: Path, id_field: str, id_prefix: str, require: tuple[str, ...]
) -> dict[str, Any]:
    """Load one CIF folder or JSONL snapshot as a single page of ``store`` (skipped if done)."""
    path = Path(path).resolve()
    if path.is_dir():
        source, query = f"cif:{path}", {"kind": "cif_dir", "path": str(path)}
    elif path.is_file():
        source = f"jsonl:{path.name}"
        query = {
            "kind": "jsonl",
            "path": str(path),
            "sha256": sha256_file(path),
            "id_field": id_field,
            "id_prefix": id_prefix,
            "require": list(require),
        }
    else:
        raise FileNotFoundError(f"--path {path} is neither a CIF folder nor a JSONL file")
    sq = SourceQuery(source=source, provider="local", query=query)
    if store.resume_point(sq, str(path)).done:
        log.info("%s: already in %s", path, store.root)
        return store.checkpoint()["sources"][sq.slug]
    if path.is_dir():
        records, failures = load_cif_dir(path, source=source)
    else:
        records, failures = load_jsonl(path, source, id_field, id_prefix, require)
    state = store.write_page(sq, 0, records, failures, None)
    log.info("%s: %d records, %d failures", source, len(records), len(failures))
    return state
