"""JSONL files (gzipped or not): one JSON object per line holding a pymatgen ``structure``
dict or a ``composition`` (the ``../shared`` snapshots, a user's candidates).

A line is refused with a reason, before anything is built from it, when it is longer than
``MAX_JSON_CHARS`` characters or its decoded JSON is nested deeper, holds longer lists or
more values than the limits in :mod:`miscreen.fetch.parsing`; structures are read as data
(:func:`miscreen.fetch.parsing.structure_from_dict`), never through pymatgen's decoder.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd

from miscreen import schema as S
from miscreen.fetch.parsing import (
    MAX_JSON_CHARS,
    check_json_size,
    check_structure,
    parse_composition,
    structure_from_dict,
)
from miscreen.fetch.records import (
    InputRow,
    UniqueIds,
    composition_record,
    reason_of,
    record_frames,
    refuse_utf16,
    structure_record,
)

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson")
FILTERED = "filtered"  # a row left out by require_elements: neither a record nor a failure
KEPT_PROPERTIES = (S.E_HULL, S.BAND_GAP, "formation_energy_per_atom", S.REFRACTIVE_INDEX)


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each line of a trusted JSONL file, gzipped or not; a line
    that is not a JSON object raises ``ValueError`` naming the file and line (use
    :func:`iter_jsonl_rows` to keep going past bad lines)."""
    for lineno, obj, error in iter_jsonl_rows(path):
        if error is not None:
            raise ValueError(f"{path} line {lineno}: {error}")
        yield lineno, obj  # type: ignore[misc]


def iter_jsonl_rows(path: Path) -> Iterator[tuple[int, dict | None, str | None]]:
    """(line number, object, None) per good line and (line number, None, reason) per bad
    one: malformed JSON, a value that is not an object, a line over the size limits, or a
    damaged gzip stream (reported once, at the line where reading stopped). A file in
    UTF-16 raises :class:`~miscreen.fetch.records.InputError`."""
    path = Path(path)
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    lineno = 0
    refuse_utf16(_head(path, opener), path)
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            while line := fh.readline(MAX_JSON_CHARS + 1):
                lineno += 1
                if len(line) > MAX_JSON_CHARS:
                    _skip_rest_of_line(fh, line)
                    yield lineno, None, f"longer than {MAX_JSON_CHARS:,} characters (limit)"
                    continue
                if line.strip():
                    yield lineno, *_decode(line)
    except (EOFError, OSError, zlib.error, UnicodeError) as exc:
        yield lineno + 1, None, f"file damaged, reading stopped here: {reason_of(exc)}"


def _head(path: Path, opener: object) -> bytes:
    """The first 4 KB of the (decompressed) file; b"" when even those cannot be read."""
    try:
        with opener(path, "rb") as raw:  # type: ignore[operator]
            return raw.read(4096)
    except (EOFError, OSError, zlib.error):
        return b""


def _skip_rest_of_line(fh: object, line: str) -> None:
    while not line.endswith("\n"):
        line = fh.readline(1 << 20)  # type: ignore[attr-defined]
        if not line:
            return


def _decode(line: str) -> tuple[dict | None, str | None]:
    try:
        obj = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as exc:
        return None, f"not valid JSON: {reason_of(exc)}"
    if not isinstance(obj, dict):
        kind = type(obj).__name__.replace("NoneType", "null")
        return None, f"a JSON {kind}, expected an object {{...}}"
    try:
        check_json_size(obj)
    except ValueError as exc:
        return None, f"too large: {exc}"
    return obj, None


def load_jsonl(
    path: Path,
    source: str | None = None,
    id_field: str = "material_id",
    id_prefix: str = "",
    require_elements: Iterable[str] = (),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A JSONL of objects with a pymatgen ``structure`` dict (the ``../shared`` snapshots)
    or a ``composition``.

    ``id_field`` names the id (``row`` for matbench, prefixed e.g. ``mbd-``); the properties
    ``e_above_hull``, ``band_gap`` and ``formation_energy_per_atom`` are kept where given.
    """
    path = Path(path)
    source = source or f"jsonl:{path.name}"
    rows = jsonl_rows(path, source, id_field, id_prefix, require_elements)
    records = [r.record for r in rows if r.record is not None]
    failures = [
        S.failure(_row_id(r, id_field, id_prefix, path), source, "load", r.reason)
        for r in rows
        if r.reason is not None and r.reason != FILTERED
    ]
    return record_frames(records, failures)


def _row_id(row: InputRow, id_field: str, id_prefix: str, path: Path) -> str:
    if row.record is not None:
        return str(row.record[S.ID])
    given = row.raw.get(id_field) if isinstance(row.raw, dict) else None
    if given in (None, "") or not isinstance(given, str | int | float):
        return f"{path.stem}-line{row.line}"
    return f"{id_prefix}{given}"[:200]


def jsonl_rows(
    path: Path,
    source: str,
    id_field: str = "material_id",
    id_prefix: str = "",
    require_elements: Iterable[str] = (),
) -> list[InputRow]:
    """Every data line of a JSONL file as an :class:`InputRow`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"input file {path} does not exist")
    need = set(require_elements)
    unique = UniqueIds(path)
    out: list[InputRow] = []
    for lineno, obj, error in iter_jsonl_rows(path):
        where = f"{path} line {lineno}"
        row = InputRow(len(out) + 1, lineno, obj if obj is not None else {})
        out.append(row)
        if error is not None:
            row.reason = f"{where}: {error}"
            continue
        assert obj is not None
        given = obj.get(id_field)
        rid = f"{id_prefix}{given}" if given not in (None, "") else f"{path.stem}-line{lineno}"
        rid = unique(rid[:200], f"line{lineno}")
        if need and not need <= _listed_elements(obj, need):
            row.reason = FILTERED  # decided before a structure is built: most rows are
            continue  # left out here, and building one costs milliseconds (symmetry)
        try:
            record = _jsonl_record(obj, rid, source)
        except Exception as exc:
            row.reason = f"{where}: {reason_of(exc)}"
            continue
        if need and not need <= _elements(record):
            row.reason = FILTERED
            continue
        row.record = record
    return out


def _listed_elements(obj: dict, need: set[str]) -> set[str]:
    """The elements a structure dict lists on its sites, read without building anything;
    ``need`` itself where they cannot be read that simply (the record decides later)."""
    raw = obj.get(S.STRUCTURE)
    try:
        listed = {sp["element"] for site in raw["sites"] for sp in site["species"]}  # type: ignore[index]
    except Exception:  # not a structure dict of that shape: no shortcut
        return need
    return listed if all(isinstance(e, str) for e in listed) else need


def _elements(record: dict) -> set[str]:
    return {el.symbol for el in parse_composition(record[S.COMPOSITION]).elements}


def _jsonl_record(obj: dict, rid: str, source: str) -> dict:
    extra = {
        k: obj[k]
        for k in KEPT_PROPERTIES
        if isinstance(obj.get(k), int | float) and not isinstance(obj.get(k), bool)
    }
    raw = obj.get(S.STRUCTURE)
    if raw is not None:
        if not isinstance(raw, dict):
            raise ValueError(f"'structure' is a {type(raw).__name__}, expected a pymatgen dict")
        try:
            structure = structure_from_dict(raw)
        except Exception as exc:
            raise ValueError(f"bad structure: {reason_of(exc)}") from exc
        try:
            check_structure(structure)
        except ValueError as exc:
            raise ValueError(f"impossible structure: {exc}") from exc
        return structure_record(rid, source, structure, **extra)
    if obj.get(S.COMPOSITION) not in (None, ""):
        return {**composition_record(obj[S.COMPOSITION], rid, source, {}), **extra}
    raise ValueError("no 'structure' (pymatgen dict) or 'composition' in the object")
