"""The OBELiX dataset as a labelled records table (see ``miscreen.schema``)."""

from __future__ import annotations

import functools
import logging
import tarfile
from pathlib import Path
from typing import Literal

import pandas as pd
from pymatgen.core import Composition

from miscreen import schema as S
from miscreen.fetch.cif_files import structure_from_cif_text
from miscreen.fetch.datasets import fetch_file
from miscreen.fetch.labels import parse_sigma
from miscreen.fetch.parsing import composition_mismatch, parse_composition, structure_to_json

log = logging.getLogger(__name__)

Split = Literal["all", "train", "test"]
SOURCE = "obelix"
TARGET_COLUMN = "Ionic conductivity (S cm-1)"


def read_cifs(archive: Path) -> dict[str, str]:
    """Map OBELiX ID -> CIF text for every ``all_randomized_cifs/<ID>.cif`` in the archive."""
    out: dict[str, str] = {}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.endswith(".cif"):
                fh = tar.extractfile(member)
                if fh is not None:
                    out[Path(member.name).stem] = fh.read().decode("utf-8", errors="replace")
    return out


@functools.lru_cache(maxsize=2)
def parsed_cifs(archive: Path) -> dict[str, tuple[str, Composition] | Exception]:
    """ID -> (structure JSON, its composition) or the parse error, for every CIF; parsed
    once per process."""
    out: dict[str, tuple[str, Composition] | Exception] = {}
    for rid, text in read_cifs(archive).items():
        try:
            structure = structure_from_cif_text(text)
            out[rid] = (structure_to_json(structure), structure.composition)
        except Exception as exc:
            out[rid] = exc
    return out


def load_obelix(
    split: Split = "all", with_structures: bool = True, data_dir: Path | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Load an official OBELiX split -> (records, failures).

    Compositions come from ``True Composition`` (parseable for every row upstream); rows
    whose CIF exists get ``structure``; lattice parameters and space group come from the
    table for every row. Downloads, when needed, go to ``data_dir``.
    """
    csv_path = fetch_file("obelix", f"{split}.csv", folder=data_dir)
    raw = pd.read_csv(csv_path, dtype={"ID": str}, keep_default_na=False)
    cifs = (
        parsed_cifs(fetch_file("obelix", "all_cifs.tar.gz", folder=data_dir))
        if with_structures
        else {}
    )
    rows: list[dict[str, object]] = []
    failures: list[dict[str, str]] = []
    mismatched: list[str] = []
    for i, r in raw.iterrows():
        rid = str(r["ID"])
        where = f"{csv_path.name} row {int(i) + 2} (ID {rid})"
        try:
            comp = parse_composition(r["True Composition"])
            log10_sigma, censored, bound = parse_sigma(r[TARGET_COLUMN])
        except ValueError as exc:
            failures.append(S.failure(rid, SOURCE, "load", f"{where}: {exc}"))
            continue
        parsed = cifs.get(rid)
        structure = None
        if isinstance(parsed, Exception):
            failures.append(
                S.failure(rid, SOURCE, "load", f"{where}: CIF {rid}.cif unreadable: {parsed}")
            )
        elif parsed is not None:
            structure, cif_composition = parsed
            if off := composition_mismatch(comp, cif_composition):
                mismatched.append(f"{rid} ({off})")
        rows.append(
            {
                S.ID: rid,
                S.SOURCE: SOURCE,
                S.FORMULA: comp.reduced_formula,
                S.COMPOSITION: comp.formula,
                S.STRUCTURE: structure,
                S.SPACEGROUP: S.as_float(r["Space group #"]),
                **{k: S.as_float(r[k]) for k in S.LATTICE},
                S.Z: S.as_float(r["Z"]),
                S.TARGET: log10_sigma,
                S.CENSORED: censored,
                "censor_bound": bound,
                S.FAMILY: str(r["Family"]).strip() or "unknown",
                S.DOI: str(r["DOI"]).strip(),
            }
        )
    records = pd.DataFrame(rows)
    if mismatched:
        # kept: the composition features use the table, the structure features the CIF
        log.warning(
            "OBELiX %s: %d CIFs differ from their row's True Composition by more than 0.02 in "
            "an atomic fraction (upstream data; composition features use the table, "
            "structure features the CIF): %s",
            split,
            len(mismatched),
            "; ".join(mismatched[:5]) + (" ..." if len(mismatched) > 5 else ""),
        )
    log.info(
        "OBELiX %s: %d rows, %d with structures, %d censored, %d failures",
        split,
        len(records),
        int(records[S.STRUCTURE].notna().sum()),
        int(records[S.CENSORED].sum()),
        len(failures),
    )
    return records, pd.DataFrame(failures, columns=list(S.FAILURE_COLUMNS))
