"""CIFs: text to a checked structure, CIF files, folders of them, and CIF paths that must stay
inside a folder (the CSV's). Limits are documented in :mod:`miscreen.fetch.parsing`.

Before pymatgen expands a CIF, two guards read the CIF's own data items: the symmetry guard
counts atom rows times the longest list under *any* key pymatgen may read symmetry
operations from (every ``_symmetry_equiv_pos*`` and ``_space_group_symop*`` spelling, with
dots or underscores, magnetic centerings multiplied in), and the occupancy guard refuses an
``_atom_site_occupancy`` outside (0, 1 + tolerance], which pymatgen would drop or rescale
without a word.
"""

from __future__ import annotations

import math
import os
import stat
import warnings
from pathlib import Path

import pandas as pd
from pymatgen.core import Structure
from pymatgen.io.cif import CifBlock, CifFile, CifParser, str2float

from miscreen import schema as S
from miscreen.fetch.parsing import (
    MAX_CIF_BYTES,
    MAX_CIF_EXPANSION,
    OCCUPANCY_TOLERANCE,
    check_structure,
)
from miscreen.fetch.records import (
    UniqueIds,
    reason_of,
    record_frames,
    refuse_utf16,
    structure_record,
)

SYMOP_PREFIXES = ("_symmetry_equiv_pos", "_space_group_symop")
LARGEST_SPACE_GROUP = 192  # operations counted for a CIF that lists none


def structure_from_cif_text(text: str) -> Structure:
    """Parse the first structure of a CIF (disorder kept as partial occupancies)."""
    if len(text) > MAX_CIF_BYTES:
        raise ValueError(f"CIF of {len(text):,} characters exceeds the {MAX_CIF_BYTES:,} limit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            cif = CifFile.from_str(text)
        except ZeroDivisionError:  # pymatgen divides by the columns of a loop_ it read
            raise ValueError("a loop_ without column names (a truncated or damaged CIF)") from None
    for block in cif.data.values():
        check_cif_expansion(block)
        check_cif_occupancies(block)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parser = CifParser.from_str(text, occupancy_tolerance=1 + OCCUPANCY_TOLERANCE)
        structures = parser.parse_structures(primitive=False)
    if not structures:
        raise ValueError("CIF holds no structure pymatgen can read")
    return structures[0]


def _normal(key: str) -> str:
    return key.lower().replace(".", "_")


def _length(value: object) -> int:
    return len(value) if isinstance(value, list) else 1


def check_cif_expansion(block: CifBlock) -> None:
    """Refuse a data block whose atom rows times symmetry operations (times magnetic
    centerings) exceed ``MAX_CIF_EXPANSION``; a block listing no operation counts as the
    largest space group (192 operations)."""
    rows, ops, centerings = 0, 0, 1
    for key, value in block.data.items():
        name = _normal(key)
        if name.startswith("_atom_site_"):
            rows = max(rows, _length(value))
        elif name.startswith(SYMOP_PREFIXES) and "centering" in name:
            centerings = max(centerings, _length(value))
        elif name.startswith(SYMOP_PREFIXES):
            ops = max(ops, _length(value))
    total = rows * (ops or LARGEST_SPACE_GROUP) * centerings
    if total > MAX_CIF_EXPANSION:
        raise ValueError(
            f"CIF expands to about {total:,} atom positions before merging (atom rows x "
            f"symmetry operations; limit {MAX_CIF_EXPANSION:,}): too large a structure"
        )


def check_cif_occupancies(block: CifBlock) -> None:
    """Refuse an ``_atom_site_occupancy`` that is not a number in (0, 1 + tolerance]
    (values pymatgen cannot read, such as ``?``, count as 1, as pymatgen reads them)."""
    occupancies = block.data.get("_atom_site_occupancy")
    if occupancies is None:
        return
    values = occupancies if isinstance(occupancies, list) else [occupancies]
    labels = block.data.get("_atom_site_label")
    labels = labels if isinstance(labels, list) else [labels] * len(values)
    for i, text in enumerate(values):
        try:
            occu = str2float(text)
        except ValueError:
            continue
        if not (math.isfinite(occu) and 0 < occu <= 1 + OCCUPANCY_TOLERANCE):
            label = labels[i] if i < len(labels) else f"row {i + 1}"
            raise ValueError(
                f"atom site {label} has occupancy {text} (outside (0, 1]); pymatgen would "
                f"drop or rescale it silently, so the compound read would not be the one "
                f"written: fix the occupancy"
            )


def read_cif(path: Path) -> Structure:
    """The checked structure of a CIF file (size-limited; see ``fetch.parsing``)."""
    path = Path(path)
    check_regular_file(path, "structure file")
    with open(path, "rb") as fh:
        data = fh.read(MAX_CIF_BYTES + 1)
    if len(data) > MAX_CIF_BYTES:
        raise ValueError(f"unreadable CIF {path}: larger than {MAX_CIF_BYTES:,} bytes")
    refuse_utf16(data, path)
    try:
        structure = structure_from_cif_text(data.decode("utf-8", errors="replace"))
    except Exception as exc:
        raise ValueError(f"unreadable CIF {path}: {reason_of(exc)}") from exc
    try:
        check_structure(structure)
    except ValueError as exc:
        raise ValueError(f"impossible structure in {path}: {exc}") from exc
    return structure


def check_regular_file(path: Path, what: str) -> None:
    """``ValueError`` unless ``path`` is a regular file (following links): missing, a
    folder, or a device, pipe or socket each get their own message."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ValueError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise ValueError(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise ValueError(f"{what} {path} is a folder, not a CIF file")
    if not stat.S_ISREG(mode):
        raise ValueError(f"{what} {path} is not a regular file (a device, pipe or socket)")


def cif_path(folder: Path, given: str, allow_outside: bool = False) -> Path:
    """The file a CSV's ``structure`` cell names, relative to the CSV's ``folder``; unless
    ``allow_outside``, a path that resolves (following ``..`` and symbolic links) outside
    that folder raises ``ValueError``."""
    path = Path(given)
    path = path if path.is_absolute() else Path(folder) / path
    if allow_outside:
        return path
    root = Path(folder).resolve()
    real = path.resolve()
    if not real.is_relative_to(root):
        raise ValueError(
            f"structure file {given!r} is outside the CSV's folder {root} (it resolves to "
            f"{real}); move the CIF into that folder, or allow files outside it"
        )
    return real  # the checked file, not a link that could change before it is read


def load_cif_dir(path: Path, source: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every ``*.cif`` below ``path`` (id = file stem; a repeated stem gets its path)."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"CIF folder {path} does not exist")
    source = source or f"cif:{path}"
    unique = UniqueIds(path)
    rows, failures = [], []
    cifs = sorted(p for p in path.rglob("*") if p.suffix.lower() == ".cif" and p.is_file())
    for cif in cifs:
        rid = unique(cif.stem, cif.relative_to(path).as_posix())
        try:
            structure = read_cif(cif)
            rows.append(structure_record(rid, source, structure))
        except Exception as exc:
            failures.append(S.failure(rid, source, "load", f"{cif}: {reason_of(exc)}"))
    return record_frames(rows, failures)
