"""The configured data sources as records tables: labelled training/test rows and candidate
pools (OBELiX, pymatgen examples, JSONL, CIF folders, CSV, structure stores).

Every loader returns a :class:`Loaded` (records, failures, input files with sha256), and
candidate ids are de-duplicated in one place, :func:`first_seen` (first source wins).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from miscreen import atomic_io
from miscreen import schema as S
from miscreen.config import (
    CandidateSource,
    CifDirSource,
    Config,
    CsvSource,
    JsonlSource,
    ObelixSource,
    PymatgenSource,
    StoreSource,
)
from miscreen.fetch.cif_files import load_cif_dir
from miscreen.fetch.csv_files import load_candidate_csv, load_labelled_csv
from miscreen.fetch.datasets import DATASETS, fetch_file
from miscreen.fetch.jsonl_files import load_jsonl
from miscreen.fetch.obelix import load_obelix
from miscreen.fetch.pymatgen_examples import load_pymatgen_examples
from miscreen.fetch.reference_rows import REFERENCE_COLUMNS, reference_rows

log = logging.getLogger(__name__)


@dataclass
class Loaded:
    """Records plus the failures and input files met while loading them."""

    records: pd.DataFrame
    failures: pd.DataFrame
    inputs: list[dict] = field(default_factory=list)

    def __add__(self, other: Loaded) -> Loaded:
        return Loaded(
            S.concat(self.records, other.records),
            S.concat(self.failures, other.failures),
            self.inputs + other.inputs,
        )


def first_seen(ids: Iterable[object], seen: set[str]) -> np.ndarray:
    """Mask of the ids met for the first time (not in ``seen``, not earlier in ``ids``);
    adds them to ``seen``. The one de-duplication rule: the first source wins."""
    keep = []
    for id_ in map(str, ids):
        keep.append(id_ not in seen)
        seen.add(id_)
    return np.array(keep, dtype=bool)


def obelix_inputs(split: str, data_dir: Path | None = None) -> list[dict]:
    """The OBELiX files behind a split, with sha256 and upstream URL (for manifests)."""
    return [
        {
            **atomic_io.file_entry(fetch_file("obelix", name, folder=data_dir)),
            "url": DATASETS["obelix"].file(name).url,
        }
        for name in (f"{split}.csv", "all_cifs.tar.gz")
    ]


def load_obelix_split(
    split: str,
    exclude_families: tuple[str, ...] = (),
    families: tuple[str, ...] = (),
    require_structure: bool = False,
    data_dir: Path | None = None,
) -> Loaded:
    """One official OBELiX split, optionally limited to or without some families."""
    records, failures = load_obelix(split, data_dir=data_dir)  # type: ignore[arg-type]
    keep = ~records[S.FAMILY].isin(exclude_families)
    if families:
        keep &= records[S.FAMILY].isin(families)
    if require_structure:
        keep &= records[S.STRUCTURE].notna()
    inputs = obelix_inputs(split, data_dir)
    return Loaded(records[keep].reset_index(drop=True), failures, inputs)


def load_labelled(cfg: Config, split: str) -> Loaded:
    """Training or test rows named by ``data`` in the config; the training split also takes
    the rows of every ``data.extra`` CSV (new measurements, say)."""
    if cfg.data.train == "obelix":
        loaded = load_obelix_split(split, cfg.data.exclude_families, data_dir=cfg.data_path)
    else:
        loaded = labelled_csv(Path(cfg.data.train), cfg)
    if split == cfg.data.train_split:
        for path in cfg.data.extra:
            loaded = loaded + labelled_csv(Path(path), cfg)
    return loaded


def labelled_csv(path: Path, cfg: Config) -> Loaded:
    """A labelled CSV (the ``miscreen train --data`` format), read under ``cfg.data``'s
    target column and its ``allow_outside`` / ``trust_cif`` settings."""
    records, failures = load_labelled_csv(
        path,
        target=cfg.data.target,
        allow_outside=cfg.data.allow_outside,
        trust_cif=cfg.data.trust_cif,
    )
    return Loaded(records, failures, [atomic_io.file_entry(path)])


def load_source(source: CandidateSource, data_dir: Path | None = None) -> Loaded:
    """One candidate source of the config -> records (labels dropped)."""
    if isinstance(source, ObelixSource):
        loaded = load_obelix_split(
            source.split,
            source.exclude_families,
            source.families,
            source.require_structure,
            data_dir,
        )
        drop = [S.TARGET, S.CENSORED, S.CENSOR_BOUND]
        return Loaded(loaded.records.drop(columns=drop), loaded.failures, loaded.inputs)
    if isinstance(source, PymatgenSource):
        return Loaded(*load_pymatgen_examples(source.names))
    if isinstance(source, JsonlSource):
        path = source_path(source, data_dir)
        records, failures = load_jsonl(
            path,
            source=source.dataset or None,
            id_field=source.id_field,
            id_prefix=source.id_prefix,
            require_elements=source.require_elements,
        )
        return Loaded(records, failures, [atomic_io.file_entry(path)])
    if isinstance(source, CifDirSource):
        return Loaded(*load_cif_dir(source.path))
    if isinstance(source, CsvSource):
        records, failures = load_candidate_csv(
            source.path, allow_outside=source.allow_outside, trust_cif=source.trust_cif
        )
        return Loaded(records, failures, [atomic_io.file_entry(source.path)])
    if isinstance(source, StoreSource):
        from miscreen.store.structures import check_stored_structures, read_store

        records, failures = check_stored_structures(read_store(source.path), str(source.path))
        return Loaded(records, failures, [{"path": str(source.path)}])
    raise TypeError(f"unknown candidate source {source!r}")


def source_path(source: JsonlSource, data_dir: Path | None = None) -> Path:
    """The file of a jsonl source: its registered dataset (fetched or mirrored) or path."""
    if source.dataset:
        ds = DATASETS[source.dataset]
        return fetch_file(ds.name, ds.files[0].filename, folder=data_dir)
    if source.path is not None:
        return source.path
    raise ValueError("a jsonl candidate source needs 'path' or 'dataset'")


def load_references(sources: Iterable[CandidateSource], data_dir: Path | None = None) -> Loaded:
    """Reference phases: every row of each source, whatever its elements. JSONL sources are
    read fast (:func:`miscreen.fetch.reference_rows.reference_rows`: structures as text,
    built later only where needed); others load as candidates do."""
    loaded = Loaded(pd.DataFrame(columns=list(REFERENCE_COLUMNS)), S.empty_failures())
    for source in sources:
        if isinstance(source, JsonlSource):
            path = source_path(source, data_dir)
            name = source.dataset or f"jsonl:{path.name}"
            table = reference_rows(path, name, source.id_field, source.id_prefix)
            loaded = loaded + Loaded(table, S.empty_failures(), [atomic_io.file_entry(path)])
        else:
            loaded = loaded + load_source(source, data_dir)
    keep = first_seen(loaded.records[S.ID], set())
    loaded.records = loaded.records.loc[keep].reset_index(drop=True)
    return loaded


def load_candidates(cfg: Config) -> Loaded:
    """All candidate sources, loaded whole and de-duplicated by id (first source wins)."""
    loaded = Loaded(pd.DataFrame(columns=list(S.RECORD_COLUMNS)), S.empty_failures())
    for source in cfg.candidates:
        loaded = loaded + load_source(source, cfg.data_path)
    keep = first_seen(loaded.records[S.ID], set())
    if not keep.all():
        log.warning("dropping %d candidates whose id appeared in an earlier source", (~keep).sum())
    loaded.records = loaded.records.loc[keep].reset_index(drop=True)
    return loaded
