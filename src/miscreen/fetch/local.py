"""A user's input file of candidates, CSV or JSONL, chosen by its name; each row comes back
with its record or the reason it cannot be used (``miscreen predict``).

The formats live in their own modules: :mod:`miscreen.fetch.csv_files`,
:mod:`miscreen.fetch.jsonl_files`, :mod:`miscreen.fetch.cif_files` and
:mod:`miscreen.fetch.pymatgen_examples`; the helpers they share in
:mod:`miscreen.fetch.records`.

Bad input never costs the good rows: every row that cannot be used (malformed line, JSON
that is not an object or is too large, an unparsable or absurd formula, a CIF that cannot
be read, lies outside the CSV's folder or describes an impossible cell, a composition that
disagrees with its CIF, a label outside the physical range) becomes a failure whose reason
names the file and line. Only a file that cannot be read at all (missing, empty, not UTF-8,
no usable header) raises :class:`~miscreen.fetch.records.InputError`. Ids repeated within a
file are made unique by line (``id#line7``), so rows are never joined on an id.
"""

from __future__ import annotations

from pathlib import Path

from miscreen import schema as S
from miscreen.fetch.csv_files import CSV_SUFFIXES, csv_rows
from miscreen.fetch.jsonl_files import JSONL_SUFFIXES, jsonl_rows
from miscreen.fetch.records import InputError, InputRow


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


def read_input_rows(
    path: Path,
    source: str | None = None,
    allow_outside: bool = False,
    trust_cif: bool = False,
) -> tuple[list[str], list[InputRow]]:
    """Candidates from a CSV or JSONL file (chosen by suffix, case-insensitive) -> (the
    input's columns, every data row with its record or the reason it cannot be used).

    For a CSV, ``allow_outside`` lets CIF paths point outside the CSV's folder and
    ``trust_cif`` keeps rows whose composition disagrees with their CIF (see
    :func:`miscreen.fetch.csv_files.csv_rows`); a JSONL file has neither."""
    path = Path(path)
    source = source or f"{input_kind(path)}:{path.name}"
    if input_kind(path) == "csv":
        return csv_rows(path, source, allow_outside=allow_outside, trust_cif=trust_cif)
    rows = jsonl_rows(path, source)
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r.raw if k not in columns and k != S.STRUCTURE]
    return columns, rows
