"""Local sources: CIF folders, JSONL snapshots of pymatgen structures, labelled CSVs,
and the example structures that ship with pymatgen. Each returns (records, failures)."""

from __future__ import annotations

import gzip
import json
import logging
import math
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd
from pymatgen.core import Structure

from miscreen import schema as S
from miscreen.fetch.labels import parse_sigma
from miscreen.fetch.structures import (
    parse_composition,
    structure_from_cif_text,
    structure_to_json,
)

log = logging.getLogger(__name__)

PYMATGEN_EXAMPLES = ("Li10GeP2S12", "LiFePO4", "Li2O", "Li3V2(PO4)3")


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
    except ValueError as exc:  # pymatgen's SymmetryUndeterminedError
        log.warning("%s: space group left unknown: %s: %s", where, type(exc).__name__, exc)
        return math.nan


def _frame(rows: list[dict], failures: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    records = S.ensure_record_columns(pd.DataFrame(rows))
    return records, pd.DataFrame(failures, columns=list(S.FAILURE_COLUMNS))


def load_cif_dir(path: Path, source: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every ``*.cif`` below ``path`` (id = file stem)."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"CIF folder {path} does not exist")
    source = source or f"cif:{path}"
    rows, failures = [], []
    for cif in sorted(path.rglob("*.cif")):
        try:
            structure = structure_from_cif_text(cif.read_text(encoding="utf-8", errors="replace"))
            rows.append(structure_record(cif.stem, source, structure))
        except Exception as exc:
            failures.append(S.failure(cif.stem, source, "load", f"{cif}: unreadable CIF: {exc}"))
    return _frame(rows, failures)


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each line of a JSONL file, gzipped or not."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.strip():
                yield lineno, json.loads(line)


def load_jsonl(
    path: Path,
    source: str | None = None,
    id_field: str = "material_id",
    id_prefix: str = "",
    require_elements: Iterable[str] = (),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A JSONL of objects with a pymatgen ``structure`` dict (the ``../shared`` snapshots).

    ``id_field`` names the id (``row`` for matbench, prefixed e.g. ``mbd-``); the properties
    ``e_above_hull``, ``band_gap`` and ``formation_energy_per_atom`` are kept where given.
    """
    path = Path(path)
    source = source or f"jsonl:{path.name}"
    need = set(require_elements)
    rows, failures = [], []
    for lineno, obj in iter_jsonl(path):
        rid = f"{id_prefix}{obj.get(id_field, f'line{lineno}')}"
        try:
            structure = Structure.from_dict(obj["structure"])
        except Exception as exc:
            failures.append(
                S.failure(rid, source, "load", f"{path} line {lineno}: bad structure: {exc}")
            )
            continue
        if need and not need <= {el.symbol for el in structure.composition.elements}:
            continue
        extra = {
            k: obj.get(k)
            for k in (S.E_HULL, S.BAND_GAP, "formation_energy_per_atom")
            if obj.get(k) is not None
        }
        rows.append(structure_record(rid, source, structure, **extra))
    return _frame(rows, failures)


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
            failures.append(S.failure(name, "pymatgen", "load", f"{path}: {exc}"))
    return _frame(rows, failures)


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
    source = source or f"csv:{path.name}"
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    if S.COMPOSITION not in table.columns and S.STRUCTURE not in table.columns:
        raise ValueError(
            f"{path}: needs a 'composition' column (and optionally 'structure' with CIF "
            f"paths); found columns {list(table.columns)}"
        )
    if target not in table.columns:
        raise ValueError(
            f"{path}: target column {target!r} not found; columns are {list(table.columns)}. "
            f"Use --target to name the column."
        )
    rows, failures = [], []
    for i, r in table.iterrows():
        line = int(i) + 2
        rid = r.get(S.ID) or f"{path.stem}-{line}"
        where = f"{path} line {line}"
        try:
            row = _csv_row(r, path.parent, rid, source, where)
            row.update(_target(r[target], log_scale=target == S.TARGET, where=where))
            row[S.DOI] = str(r.get(S.DOI, "") or "")  # CV groups by publication when given
        except (ValueError, OSError) as exc:
            failures.append(S.failure(rid, source, "load", str(exc)))
            continue
        rows.append(row)
    return _frame(rows, failures)


def load_candidate_csv(path: Path, source: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Unlabelled candidates: ``composition`` and/or ``structure`` (CIF paths)."""
    path = Path(path)
    source = source or f"csv:{path.name}"
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    if S.COMPOSITION not in table.columns and S.STRUCTURE not in table.columns:
        raise ValueError(f"{path}: needs a 'composition' or 'structure' column")
    rows, failures = [], []
    for i, r in table.iterrows():
        line = int(i) + 2
        rid = r.get(S.ID) or f"{path.stem}-{line}"
        try:
            rows.append(_csv_row(r, path.parent, rid, source, f"{path} line {line}"))
        except (ValueError, OSError) as exc:
            failures.append(S.failure(rid, source, "load", str(exc)))
    return _frame(rows, failures)


def _csv_row(r: pd.Series, base: Path, rid: str, source: str, where: str) -> dict:
    cif = str(r.get(S.STRUCTURE, "") or "").strip()
    if cif:
        cif_path = (base / cif) if not Path(cif).is_absolute() else Path(cif)
        if not cif_path.is_file():
            raise ValueError(f"{where}: structure file {cif_path} does not exist")
        try:
            structure = structure_from_cif_text(cif_path.read_text(errors="replace"))
        except Exception as exc:
            raise ValueError(f"{where}: unreadable CIF {cif_path}: {exc}") from exc
        return structure_record(rid, source, structure)
    try:
        comp = parse_composition(r.get(S.COMPOSITION, ""))
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}; fix the formula or remove the row") from exc
    row = {
        S.ID: rid,
        S.SOURCE: source,
        S.FORMULA: comp.reduced_formula,
        S.COMPOSITION: comp.formula,
        S.STRUCTURE: None,
    }
    for col in (S.SPACEGROUP, *S.LATTICE, S.Z):
        row[col] = S.as_float(r.get(col, ""))
    return row


def _target(raw: str, log_scale: bool, where: str) -> dict:
    text = str(raw).strip()
    if not text:
        raise ValueError(f"{where}: empty target value")
    if log_scale:
        try:
            return {S.TARGET: float(text), S.CENSORED: False, "censor_bound": math.nan}
        except ValueError as exc:
            raise ValueError(f"{where}: log10_sigma {text!r} is not a number") from exc
    try:
        value, censored, bound = parse_sigma(text)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from exc
    return {S.TARGET: value, S.CENSORED: censored, "censor_bound": bound}
