"""Record helpers shared by every reader of structures and formulas (local files, Materials
Project, OPTIMADE, BVSE): the records row of a structure or a formula, one-line reasons,
the rows of an input file, ids made unique within a file, and the error for a file that
cannot be read at all."""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pymatgen.core import Composition, Structure

from miscreen import schema as S
from miscreen.errors import UserError
from miscreen.fetch.parsing import parse_composition, structure_to_json

log = logging.getLogger(__name__)

MAX_REASON_CHARS = 500
UTF16_MARKS = (b"\xff\xfe", b"\xfe\xff")  # byte-order marks of UTF-16 (and UTF-32 LE)


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


def formula_columns(comp: Composition) -> tuple[str, str, float]:
    """(reduced formula, formula of the reduced composition, formula units) of ``comp``,
    without pymatgen's warnings about elements with no electronegativity (He, Ne, Ar),
    which it prints while ordering a formula: noble-gas compounds are valid input."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No Pauling electronegativity")
        reduced, factor = comp.get_reduced_composition_and_factor()
        return reduced.reduced_formula, reduced.formula, float(factor)


def structure_record(id_: str, source: str, structure: Structure, **extra: object) -> dict:
    """A records row for a structure; lattice and composition read off the structure."""
    lat = structure.lattice
    formula, composition, factor = formula_columns(structure.composition)
    return {
        S.ID: id_,
        S.SOURCE: source,
        S.FORMULA: formula,
        S.COMPOSITION: composition,
        S.STRUCTURE: structure_to_json(structure),
        S.SPACEGROUP: _spacegroup(structure, f"{source} {id_}"),
        **dict(zip(S.LATTICE, (*lat.abc, *lat.angles), strict=True)),
        S.Z: factor,
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


def composition_record(
    formula: object, rid: str, source: str, cells: dict, where: str = ""
) -> dict:
    """A records row for a formula alone; space group, lattice and Z taken from ``cells``
    (the row's own columns) where they are finite numbers."""
    try:
        comp = parse_composition(formula)
    except ValueError as exc:
        prefix = f"{where}: " if where else ""
        raise ValueError(f"{prefix}{exc}; fix the formula or remove the row") from exc
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No Pauling electronegativity")
        reduced, written = comp.reduced_formula, comp.formula
    row = {
        S.ID: rid,
        S.SOURCE: source,
        S.FORMULA: reduced,
        S.COMPOSITION: written,
        S.STRUCTURE: None,
    }
    for col in (S.SPACEGROUP, *S.LATTICE, S.Z):
        value = S.as_float(cells.get(col, ""))
        row[col] = value if math.isfinite(value) else math.nan
    return row


def record_frames(rows: list[dict], failures: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(records, failures) tables from lists of rows."""
    records = S.ensure_record_columns(pd.DataFrame(rows))
    return records, pd.DataFrame(failures, columns=list(S.FAILURE_COLUMNS))


def reason_of(exc: BaseException) -> str:
    """A one-line reason for an exception, never unboundedly long."""
    text = str(exc) if isinstance(exc, ValueError | OSError) else f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split()) or type(exc).__name__
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."


def refuse_utf16(head: bytes, path: Path | str) -> None:
    """Raise :class:`InputError` when the first bytes of a file show UTF-16 or UTF-32 text
    (a byte-order mark, or NUL bytes between characters), which no reader here decodes."""
    if head.startswith(UTF16_MARKS) or b"\x00" in head[:4096]:
        raise InputError(
            f"{path} is not UTF-8 text (it looks like UTF-16: a byte-order mark or NUL "
            f"bytes); save it as UTF-8 and try again"
        )


class UniqueIds:
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
