"""Reference phases read fast: every row of a JSONL snapshot with its composition, known
properties and structure kept as JSON text, without building a ``Structure``.

The stability estimates and the band-gap model read thousands of reference rows but build
only the few structures a hull needs; building and symmetry-analysing every row (what
:func:`miscreen.fetch.jsonl_files.load_jsonl` does for candidates) would cost a minute for
the two bundled snapshots. The structure text is decoded later, as data, by
:func:`miscreen.fetch.parsing.structure_from_json` and checked by
:func:`miscreen.fetch.parsing.check_structure` (``screen.stability.References``). Lines
over the size limits, or without an id or a readable composition, are left out and counted.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from miscreen import schema as S
from miscreen.fetch.jsonl_files import KEPT_PROPERTIES, iter_jsonl_rows
from miscreen.fetch.parsing import parse_composition

log = logging.getLogger(__name__)

VOLUME_PER_ATOM = "volume_per_atom"  # Å^3, from the lattice and the site count
SPG_FIELDS = ("spg_num", "spacegroup_number", "spacegroup")
REFERENCE_COLUMNS = (
    S.ID, S.SOURCE, S.FORMULA, S.COMPOSITION, S.STRUCTURE, S.SPACEGROUP, VOLUME_PER_ATOM,
    *KEPT_PROPERTIES,
)  # fmt: skip


def reference_rows(
    path: Path, source: str, id_field: str = "material_id", id_prefix: str = ""
) -> pd.DataFrame:
    """Every usable row of a JSONL snapshot as a reference table (:data:`REFERENCE_COLUMNS`);
    ids are ``id_prefix`` + the ``id_field`` value, as the candidate reader makes them."""
    rows, skipped = [], 0
    for _, obj, error in iter_jsonl_rows(Path(path)):
        row = None if error is not None else _row(obj, source, id_field, id_prefix)  # type: ignore[arg-type]
        if row is None:
            skipped += 1
        else:
            rows.append(row)
    if skipped:
        log.info("%s: %d reference rows left out (no id, composition or structure)", path, skipped)
    return pd.DataFrame(rows, columns=list(REFERENCE_COLUMNS))


def _row(obj: dict, source: str, id_field: str, id_prefix: str) -> dict | None:
    rid, raw = obj.get(id_field), obj.get(S.STRUCTURE)
    if rid in (None, "") or not isinstance(rid, str | int) or not isinstance(raw, dict):
        return None
    try:
        comp = parse_composition(_formula(obj, raw))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    row: dict = {
        S.ID: f"{id_prefix}{rid}",
        S.SOURCE: source,
        S.FORMULA: comp.reduced_formula,
        S.COMPOSITION: comp.formula,
        S.STRUCTURE: json.dumps(raw),
        S.SPACEGROUP: next((float(obj[k]) for k in SPG_FIELDS if _number(obj.get(k))), np.nan),
        VOLUME_PER_ATOM: _volume_per_atom(raw),
    }
    for key in KEPT_PROPERTIES:
        row[key] = float(obj[key]) if _number(obj.get(key)) else np.nan
    return row


def _formula(obj: dict, raw: dict) -> str:
    """The row's formula, else the element counts of its sites (occupancies summed)."""
    if isinstance(obj.get("formula"), str) and obj["formula"]:
        return obj["formula"]
    counts: dict[str, float] = {}
    sites = raw.get("sites")
    for site in sites if isinstance(sites, list) else []:
        species_list = site.get("species") if isinstance(site, dict) else None
        for species in species_list if isinstance(species_list, list) else []:
            if isinstance(species, dict):
                el, occu = species["element"], float(species["occu"])
                counts[el] = counts.get(el, 0.0) + occu
    return " ".join(f"{el}{n:g}" for el, n in counts.items())


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)


def _volume_per_atom(raw: dict) -> float:
    try:
        matrix = np.asarray(raw["lattice"]["matrix"], dtype=float).reshape(3, 3)
        return float(abs(np.linalg.det(matrix)) / len(raw["sites"]))
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return np.nan
