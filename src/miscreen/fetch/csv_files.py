"""CSV files of candidates or measurements: ``composition`` and/or ``structure`` (CIF paths
relative to the CSV), optional ``id`` and a target column.

A CIF path must resolve inside the CSV's folder unless the caller allows otherwise
(``allow_outside``), so a shared CSV cannot make miscreen read ``../../etc/passwd``. A row
with both a composition and a CIF whose compositions disagree (atomic fractions further
apart than 0.02) is refused unless the caller trusts the CIF (``trust_cif``); either way the
CIF's composition is the one used. A file that is not UTF-8 is refused whole, naming the
line of the first undecodable byte.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pandas as pd

from miscreen import schema as S
from miscreen.fetch.cif_files import cif_path, read_cif
from miscreen.fetch.labels import parse_log10_sigma, parse_sigma
from miscreen.fetch.parsing import composition_mismatch, parse_composition
from miscreen.fetch.records import (
    InputError,
    InputRow,
    UniqueIds,
    composition_record,
    reason_of,
    record_frames,
    refuse_utf16,
    structure_record,
)

CSV_SUFFIXES = (".csv",)


def _text(path: Path) -> str:
    data = path.read_bytes()
    refuse_utf16(data, path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            f"{path} is not UTF-8 text (line {line} holds the byte 0x{data[exc.start]:02x}); "
            f"save it as UTF-8 (e.g. 'CSV UTF-8' in a spreadsheet) and try again"
        ) from None


def read_csv_rows(path: Path) -> tuple[list[str], list[InputRow]]:
    """The header and every data row of a CSV, all values as the strings given.

    A row with more fields than the header, or broken quoting, becomes a row with a reason
    (naming the line); a short row is padded with empty values. Raises :class:`InputError`
    for a file without a header or not in UTF-8, and ``FileNotFoundError`` for a missing one.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"input file {path} does not exist")
    reader = csv.reader(io.StringIO(_text(path), newline=""), strict=True)
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
    path: Path,
    source: str,
    target: str | None = None,
    allow_outside: bool = False,
    trust_cif: bool = False,
) -> tuple[list[str], list[InputRow]]:
    """Every data row of a candidate (``target`` None) or labelled CSV as an
    :class:`InputRow` with its record or reason; ``InputError`` for missing columns.

    ``allow_outside`` lets CIF paths point outside the CSV's folder; ``trust_cif`` keeps a
    row whose ``composition`` disagrees with its CIF (the CIF's composition is used)."""
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
    unique = UniqueIds(path)
    reader = _RowReader(path.parent, source, allow_outside, trust_cif)
    for row in rows:
        if row.reason is not None:
            continue
        where = f"{path} line {row.line}"
        rid = unique(str(row.raw.get(S.ID) or f"{path.stem}-{row.line}")[:200], f"line{row.line}")
        try:
            record = reader(row.raw, rid, where)
            if target is not None:
                record.update(_target(row.raw[target], log_scale=target == S.TARGET, where=where))
                record[S.DOI] = str(row.raw.get(S.DOI, "") or "")  # CV groups by publication
        except Exception as exc:
            reason = reason_of(exc)
            row.reason = reason if reason.startswith(where) else f"{where}: {reason}"
            continue
        row.record = record
    return header, rows


class _RowReader:
    """One CSV row -> a records row, from its CIF (checked against its composition) or its
    composition alone."""

    def __init__(self, folder: Path, source: str, allow_outside: bool, trust_cif: bool) -> None:
        self.folder, self.source = folder, source
        self.allow_outside, self.trust_cif = allow_outside, trust_cif

    def __call__(self, r: dict, rid: str, where: str) -> dict:
        cif = str(r.get(S.STRUCTURE, "") or "").strip()
        written = str(r.get(S.COMPOSITION, "") or "").strip()
        if not cif:
            return composition_record(written, rid, self.source, r, where)
        try:
            structure = read_cif(cif_path(self.folder, cif, self.allow_outside))
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from exc
        if written and not self.trust_cif:
            try:
                given = parse_composition(written)
            except ValueError as exc:
                raise ValueError(f"{where}: {exc} (beside CIF {cif})") from exc
            if off := composition_mismatch(given, structure.composition):
                raise ValueError(
                    f"{where}: composition {written} disagrees with its CIF {cif} "
                    f"({structure.composition.reduced_formula}; atomic fractions {off}); fix "
                    f"one of them, or trust the CIF (trust_cif) to use the CIF's composition"
                )
        return structure_record(rid, self.source, structure)


def _csv_frames(
    path: Path, source: str, target: str | None, allow_outside: bool, trust_cif: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    _, rows = csv_rows(path, source, target, allow_outside, trust_cif)
    records = [r.record for r in rows if r.record is not None]
    failures = [
        S.failure(str(r.raw.get(S.ID) or f"{path.stem}-{r.line}"), source, "load", r.reason)
        for r in rows
        if r.reason is not None
    ]
    return record_frames(records, failures)


def load_labelled_csv(
    path: Path,
    target: str = S.TARGET,
    source: str | None = None,
    allow_outside: bool = False,
    trust_cif: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A user's measurements: ``composition``, optional ``structure`` (CIF paths relative to
    the CSV), optional ``id``, and the target column.

    The target is ``log10_sigma`` (already log10 S/cm) or any named column of conductivities
    in S/cm (censored values like ``<1E-10`` allowed). Bad rows become failures naming the
    file and line; the rest load. ``allow_outside`` and ``trust_cif`` as in :func:`csv_rows`.
    """
    path = Path(path)
    return _csv_frames(path, source or f"csv:{path.name}", target, allow_outside, trust_cif)


def load_candidate_csv(
    path: Path,
    source: str | None = None,
    allow_outside: bool = False,
    trust_cif: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Unlabelled candidates: ``composition`` and/or ``structure`` (CIF paths)."""
    path = Path(path)
    return _csv_frames(path, source or f"csv:{path.name}", None, allow_outside, trust_cif)


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
