"""Local sources: CIF folders, JSONL snapshots of pymatgen structures, labelled CSVs,
and the example structures that ship with pymatgen. Each returns (records, failures).

Bad input never costs the good rows: every row that cannot be used (malformed line, JSON
that is not an object, an unparsable or absurd formula, a CIF that cannot be read or
describes an impossible cell, a label outside the physical range) becomes a failure whose
reason names the file and line. Only a file that cannot be read at all (missing, empty, no
usable header) raises :class:`InputError`. Ids repeated within a file are made unique by
line (``id#line7``), so rows are never joined on an id.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import math
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pymatgen.core import Structure

from miscreen import schema as S
from miscreen.errors import UserError
from miscreen.fetch.labels import parse_log10_sigma, parse_sigma
from miscreen.fetch.parsing import (
    MAX_CIF_BYTES,
    check_structure,
    parse_composition,
    structure_from_cif_text,
    structure_to_json,
)

log = logging.getLogger(__name__)

PYMATGEN_EXAMPLES = ("Li10GeP2S12", "LiFePO4", "Li2O", "Li3V2(PO4)3")
MAX_REASON_CHARS = 500
CSV_SUFFIXES = (".csv",)
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson")


class InputError(UserError, ValueError):
    """An input file that cannot be read at all; the message names the file and the fix."""


@dataclass
class InputRow:
    """One data row of an input file: its position, its own columns as given, and either
    the records row built from it or the reason it cannot be used."""

    number: int  # 1-based data row
    line: int  # line in the file where the row starts
    raw: dict[str, Any]
    record: dict | None = None
    reason: str | None = None


def input_kind(path: Path) -> str:
    """``csv`` or ``jsonl`` from the file name (case-insensitive); ``InputError`` otherwise."""
    name = Path(path).name.lower()
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    raise InputError(
        f"{path}: unknown input format; use a .csv (composition and/or structure columns) "
        f"or a .jsonl/.jsonl.gz file (one JSON object per line)"
    )


def structure_record(id_: str, source: str, structure: Structure, **extra: object) -> dict:
    """A records row for a structure; lattice and composition read off the structure."""
    lat = structure.lattice
    reduced, factor = structure.composition.get_reduced_composition_and_factor()
    return {
        S.ID: id_,
        S.SOURCE: source,
        S.FORMULA: reduced.reduced_formula,
        S.COMPOSITION: reduced.formula,
        S.STRUCTURE: structure_to_json(structure),
        S.SPACEGROUP: _spacegroup(structure, f"{source} {id_}"),
        **dict(zip(S.LATTICE, (*lat.abc, *lat.angles), strict=True)),
        S.Z: float(factor),
        **extra,
    }


def _spacegroup(structure: Structure, where: str) -> float:
    """Space-group number (symprec 0.1), or NaN with a warning naming ``where`` when spglib
    cannot find the symmetry (e.g. atoms too close together)."""
    try:
        return float(structure.get_space_group_info(symprec=0.1)[1])
    except Exception as exc:  # pymatgen's SymmetryUndeterminedError, spglib errors
        log.warning("%s: space group left unknown: %s: %s", where, type(exc).__name__, exc)
        return math.nan


def _frame(rows: list[dict], failures: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    records = S.ensure_record_columns(pd.DataFrame(rows))
    return records, pd.DataFrame(failures, columns=list(S.FAILURE_COLUMNS))


def reason_of(exc: BaseException) -> str:
    """A one-line reason for an exception, never unboundedly long."""
    text = str(exc) if isinstance(exc, ValueError | OSError) else f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split()) or type(exc).__name__
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."


class _UniqueIds:
    """Makes ids unique within one file: a repeated id gets ``#line<N>`` (or ``#<tag>``)."""

    def __init__(self, where: Path | str) -> None:
        self.where = where
        self.seen: dict[str, str] = {}

    def __call__(self, rid: str, tag: str) -> str:
        out = rid
        while out in self.seen:
            out = f"{rid}#{tag}" if out == rid else f"{out}#{tag}"
        if out != rid:
            first = self.seen[rid]
            log.warning(
                "%s: id %r repeats (first %s): %s gets %r", self.where, rid, first, tag, out
            )
        self.seen[out] = tag
        return out


# ------------------------------------------------------------------------------ CIF folders


def load_cif_dir(path: Path, source: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every ``*.cif`` below ``path`` (id = file stem; a repeated stem gets its path)."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"CIF folder {path} does not exist")
    source = source or f"cif:{path}"
    unique = _UniqueIds(path)
    rows, failures = [], []
    cifs = sorted(p for p in path.rglob("*") if p.suffix.lower() == ".cif" and p.is_file())
    for cif in cifs:
        rid = unique(cif.stem, cif.relative_to(path).as_posix())
        try:
            structure = read_cif(cif)
            rows.append(structure_record(rid, source, structure))
        except Exception as exc:
            failures.append(S.failure(rid, source, "load", f"{cif}: {reason_of(exc)}"))
    return _frame(rows, failures)


def read_cif(path: Path) -> Structure:
    """The checked structure of a CIF file (size-limited; see ``fetch.structures``)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"structure file {path} does not exist")
    with open(path, "rb") as fh:
        data = fh.read(MAX_CIF_BYTES + 1)
    if len(data) > MAX_CIF_BYTES:
        raise ValueError(f"unreadable CIF {path}: larger than {MAX_CIF_BYTES:,} bytes")
    try:
        structure = structure_from_cif_text(data.decode("utf-8", errors="replace"))
    except Exception as exc:
        raise ValueError(f"unreadable CIF {path}: {reason_of(exc)}") from exc
    try:
        check_structure(structure)
    except ValueError as exc:
        raise ValueError(f"impossible structure in {path}: {exc}") from exc
    return structure


# ------------------------------------------------------------------------------ JSONL


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
    one: malformed JSON, a value that is not an object, undecodable bytes, or a damaged
    gzip stream (reported once, at the line where reading stopped)."""
    path = Path(path)
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    lineno = 0
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except (json.JSONDecodeError, RecursionError) as exc:
                    yield lineno, None, f"not valid JSON: {reason_of(exc)}"
                    continue
                if not isinstance(obj, dict):
                    kind = type(obj).__name__.replace("NoneType", "null")
                    yield lineno, None, f"a JSON {kind}, expected an object {{...}}"
                    continue
                yield lineno, obj, None
    except (EOFError, OSError, zlib.error, UnicodeError) as exc:
        yield lineno + 1, None, f"file damaged, reading stopped here: {reason_of(exc)}"


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
    return _frame(records, failures)


FILTERED = "filtered"  # a row left out by require_elements: neither a record nor a failure


def _row_id(row: InputRow, id_field: str, id_prefix: str, path: Path) -> str:
    if row.record is not None:
        return str(row.record[S.ID])
    given = row.raw.get(id_field) if isinstance(row.raw, dict) else None
    return f"{id_prefix}{given}" if given not in (None, "") else f"{path.stem}-line{row.line}"


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
    unique = _UniqueIds(path)
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
        try:
            record = _jsonl_record(obj, rid, source, where)
        except Exception as exc:
            row.reason = f"{where}: {reason_of(exc)}"
            continue
        if need and not need <= _elements(record):
            row.reason = FILTERED
            continue
        row.record = record
    return out


def _elements(record: dict) -> set[str]:
    return {el.symbol for el in parse_composition(record[S.COMPOSITION]).elements}


def _jsonl_record(obj: dict, rid: str, source: str, where: str) -> dict:
    extra = {
        k: obj[k]
        for k in (S.E_HULL, S.BAND_GAP, "formation_energy_per_atom")
        if isinstance(obj.get(k), int | float) and not isinstance(obj.get(k), bool)
    }
    raw = obj.get(S.STRUCTURE)
    if raw is not None:
        if not isinstance(raw, dict):
            raise ValueError(f"'structure' is a {type(raw).__name__}, expected a pymatgen dict")
        try:
            structure = Structure.from_dict(raw)
        except Exception as exc:
            raise ValueError(f"bad structure: {reason_of(exc)}") from exc
        try:
            check_structure(structure)
        except ValueError as exc:
            raise ValueError(f"impossible structure: {exc}") from exc
        return structure_record(rid, source, structure, **extra)
    if obj.get(S.COMPOSITION) not in (None, ""):
        return {**_composition_record(obj[S.COMPOSITION], rid, source, {}), **extra}
    raise ValueError("no 'structure' (pymatgen dict) or 'composition' in the object")


# ------------------------------------------------------------------------------ CSV


def read_csv_rows(path: Path) -> tuple[list[str], list[InputRow]]:
    """The header and every data row of a CSV, all values as the strings given.

    A row with more fields than the header, or broken quoting, becomes a row with a reason
    (naming the line); a short row is padded with empty values. Raises :class:`InputError`
    for a file without a header and ``FileNotFoundError`` for a missing one.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"input file {path} does not exist")
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    rows: list[InputRow] = []
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if header is None:
                raise InputError(f"{path} line {start}: unreadable header: {exc}") from None
            end = reader.line_num
            span = f"line {start}" if end <= start else f"lines {start}-{end}"
            rows.append(InputRow(len(rows) + 1, start, {}, reason=f"{path} {span}: {exc}"))
            continue
        if not any(f.strip() for f in fields):
            continue  # blank line
        if header is None:
            header = fields
            dupes = sorted({h for h in header if header.count(h) > 1})
            if dupes:
                raise InputError(f"{path}: column(s) {dupes} appear more than once in the header")
            continue
        row = InputRow(len(rows) + 1, start, {})
        if len(fields) > len(header):
            row.raw = dict(zip(header, fields, strict=False))
            row.reason = (
                f"{path} line {start}: {len(fields)} fields but the header has {len(header)} "
                f"(an unquoted comma?)"
            )
        else:
            row.raw = dict(zip(header, fields + [""] * (len(header) - len(fields)), strict=True))
        rows.append(row)
    if header is None:
        raise InputError(
            f"{path} is empty: expected a header line naming the columns "
            f"(composition and/or structure, optionally id and a target)"
        )
    return header, rows


def csv_rows(
    path: Path, source: str, target: str | None = None
) -> tuple[list[str], list[InputRow]]:
    """Every data row of a candidate (``target`` None) or labelled CSV as an
    :class:`InputRow` with its record or reason; ``InputError`` for missing columns."""
    path = Path(path)
    header, rows = read_csv_rows(path)
    if S.COMPOSITION not in header and S.STRUCTURE not in header:
        raise InputError(
            f"{path}: needs a 'composition' column (and optionally 'structure' with CIF "
            f"paths); found columns {header}"
        )
    if target is not None and target not in header:
        raise InputError(
            f"{path}: target column {target!r} not found; columns are {header}. "
            f"Use --target to name the column."
        )
    unique = _UniqueIds(path)
    for row in rows:
        if row.reason is not None:
            continue
        where = f"{path} line {row.line}"
        rid = unique(str(row.raw.get(S.ID) or f"{path.stem}-{row.line}")[:200], f"line{row.line}")
        try:
            record = _csv_row(row.raw, path.parent, rid, source, where)
            if target is not None:
                record.update(_target(row.raw[target], log_scale=target == S.TARGET, where=where))
                record[S.DOI] = str(row.raw.get(S.DOI, "") or "")  # CV groups by publication
        except Exception as exc:
            reason = reason_of(exc)
            row.reason = reason if reason.startswith(where) else f"{where}: {reason}"
            continue
        row.record = record
    return header, rows


def _csv_frames(path: Path, source: str, target: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    _, rows = csv_rows(path, source, target)
    records = [r.record for r in rows if r.record is not None]
    failures = [
        S.failure(str(r.raw.get(S.ID) or f"{path.stem}-{r.line}"), source, "load", r.reason)
        for r in rows
        if r.reason is not None
    ]
    return _frame(records, failures)


def load_labelled_csv(
    path: Path, target: str = S.TARGET, source: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A user's measurements: ``composition``, optional ``structure`` (CIF paths relative to
    the CSV), optional ``id``, and the target column.

    The target is ``log10_sigma`` (already log10 S/cm) or any named column of conductivities
    in S/cm (censored values like ``<1E-10`` allowed). Bad rows become failures naming the
    file and line; the rest load.
    """
    path = Path(path)
    return _csv_frames(path, source or f"csv:{path.name}", target)


def load_candidate_csv(path: Path, source: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Unlabelled candidates: ``composition`` and/or ``structure`` (CIF paths)."""
    path = Path(path)
    return _csv_frames(path, source or f"csv:{path.name}", None)


def read_input_rows(path: Path, source: str | None = None) -> tuple[list[str], list[InputRow]]:
    """Candidates from a CSV or JSONL file (chosen by suffix, case-insensitive) -> (the
    input's columns, every data row with its record or the reason it cannot be used)."""
    path = Path(path)
    source = source or f"{input_kind(path)}:{path.name}"
    if input_kind(path) == "csv":
        return csv_rows(path, source)
    rows = jsonl_rows(path, source)
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r.raw if k not in columns and k != S.STRUCTURE]
    return columns, rows


def _csv_row(r: dict, base: Path, rid: str, source: str, where: str) -> dict:
    cif = str(r.get(S.STRUCTURE, "") or "").strip()
    if cif:
        cif_path = (base / cif) if not Path(cif).is_absolute() else Path(cif)
        try:
            structure = read_cif(cif_path)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from exc
        return structure_record(rid, source, structure)
    return _composition_record(r.get(S.COMPOSITION, ""), rid, source, r, where)


def _composition_record(
    formula: object, rid: str, source: str, cells: dict, where: str = ""
) -> dict:
    try:
        comp = parse_composition(formula)
    except ValueError as exc:
        prefix = f"{where}: " if where else ""
        raise ValueError(f"{prefix}{exc}; fix the formula or remove the row") from exc
    row = {
        S.ID: rid,
        S.SOURCE: source,
        S.FORMULA: comp.reduced_formula,
        S.COMPOSITION: comp.formula,
        S.STRUCTURE: None,
    }
    for col in (S.SPACEGROUP, *S.LATTICE, S.Z):
        value = S.as_float(cells.get(col, ""))
        row[col] = value if math.isfinite(value) else math.nan
    return row


def _target(raw: str, log_scale: bool, where: str) -> dict:
    text = str(raw).strip()
    if not text:
        raise ValueError(f"{where}: empty target value")
    try:
        if log_scale:
            return {S.TARGET: parse_log10_sigma(text), S.CENSORED: False, "censor_bound": math.nan}
        value, censored, bound = parse_sigma(text)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from exc
    return {S.TARGET: value, S.CENSORED: censored, "censor_bound": bound}


# ------------------------------------------------------------------------------ pymatgen


def load_pymatgen_examples(
    names: Iterable[str] = PYMATGEN_EXAMPLES,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Structures bundled with pymatgen (``pymatgen/util/structures/<name>.json``)."""
    import pymatgen.util as pmg_util

    folder = Path(pmg_util.__file__).parent / "structures"
    rows, failures = [], []
    for name in names:
        path = folder / f"{name}.json"
        try:
            structure = Structure.from_file(path)
            rows.append(structure_record(f"pymatgen:{name}", "pymatgen", structure))
        except Exception as exc:
            failures.append(S.failure(name, "pymatgen", "load", f"{path}: {reason_of(exc)}"))
    return _frame(rows, failures)
