"""Which candidates are materials already measured (the run's labelled rows).

A candidate is known when its reduced formula equals a measured material's, or when
pymatgen's ``StructureMatcher`` matches the two structures. A disordered CIF is compared
through its majority-occupancy approximant (each site takes its most abundant element), so
an ordered cell matches a disordered CIF of the same phase. Only structures whose atomic
fractions agree within :data:`FRACTION_TOL` are compared, which keeps the matcher to a
handful of pairs per candidate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd
from pymatgen.analysis.structure_matcher import ElementComparator, StructureMatcher
from pymatgen.core import Composition, Structure

from miscreen import atomic_io
from miscreen import schema as S
from miscreen.fetch.parsing import structure_from_json

log = logging.getLogger(__name__)

KNOWN_MATCH = "known_match"
FRACTION_TOL = 0.03  # atomic fraction per element
KNOWN_COLUMNS = (S.ID, S.SOURCE, S.FORMULA, S.COMPOSITION, S.STRUCTURE, S.TARGET)


@dataclass(frozen=True)
class Known:
    """One measured material, parsed for matching."""

    id: str
    source: str
    formula: str
    fractions: dict[str, float]
    structure: Structure | None
    log10_sigma: float

    def describe(self, how: str) -> str:
        sigma = "" if pd.isna(self.log10_sigma) else f", measured log10 σ {self.log10_sigma:.2f}"
        return f"{self.source} {self.id} {self.formula} ({how}{sigma})"


def _composition(text: object) -> Composition | None:
    try:
        comp = Composition(str(text))
    except (ValueError, KeyError, TypeError, OverflowError):
        return None
    return comp if comp.num_atoms > 0 else None


def _fractions(comp: Composition) -> dict[str, float]:
    return {el.symbol: float(x) for el, x in comp.fractional_composition.items()}


def _structure(text: object) -> Structure | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return structure_from_json(text)
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("known materials: a structure does not parse (%s); formula match only", exc)
        return None


def majority_approximant(structure: Structure) -> Structure:
    """The structure with every site taken by its most abundant element (ordered as is)."""
    if structure.is_ordered:
        return structure
    species = [max(site.species.items(), key=lambda kv: kv[1])[0] for site in structure]
    return Structure(structure.lattice, species, structure.frac_coords)


def parse_known(table: pd.DataFrame) -> list[Known]:
    """Measured materials (a records table with labels) ready for matching."""
    out = []
    for row in table.to_dict("records"):
        comp = _composition(row.get(S.COMPOSITION))
        if comp is None:
            continue
        out.append(
            Known(
                id=str(row[S.ID]),
                source=str(row.get(S.SOURCE, "")),
                formula=comp.reduced_formula,
                fractions=_fractions(comp),
                structure=_ordered(_structure(row.get(S.STRUCTURE))),
                log10_sigma=S.as_float(row.get(S.TARGET)),
            )
        )
    return out


def _ordered(structure: Structure | None) -> Structure | None:
    return None if structure is None else majority_approximant(structure)


@lru_cache(maxsize=2)
def _known_from_file(path: str, mtime_ns: int) -> tuple[list[Known], dict[str, list[Known]]]:
    known = parse_known(atomic_io.read_table(Path(path)))
    by_formula: dict[str, list[Known]] = {}
    for k in known:
        by_formula.setdefault(k.formula, []).append(k)
    return known, by_formula


def load_known(path: Path) -> tuple[list[Known], dict[str, list[Known]]]:
    """The measured materials of a run, parsed once per process (and again when changed)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: excluding measured materials needs the run's labelled rows, "
            "which `miscreen train CONFIG` writes; train first (or set screen.exclude_known: false)"
        )
    return _known_from_file(str(path.resolve()), path.stat().st_mtime_ns)


def _close(a: dict[str, float], b: dict[str, float]) -> bool:
    if a.keys() != b.keys():
        return False
    return all(abs(a[e] - b[e]) <= FRACTION_TOL for e in a)


_MATCHER = StructureMatcher(comparator=ElementComparator(), attempt_supercell=True)


def match(
    composition: object, structure: object, known: list[Known], by_formula: dict[str, list[Known]]
) -> str:
    """The measured material a candidate is ('' when none), described for a reader."""
    comp = _composition(composition)
    if comp is None:
        return ""
    same = by_formula.get(comp.reduced_formula)
    if same:
        return same[0].describe("same reduced formula")
    mine = _ordered(_structure(structure))
    if mine is None:
        return ""
    fractions = _fractions(comp)
    for k in known:
        if k.structure is None or not _close(fractions, k.fractions):
            continue
        try:
            if _MATCHER.fit(mine, k.structure):
                return k.describe("StructureMatcher match")
        except (ValueError, RuntimeError) as exc:
            log.warning("known materials: matching %s against %s failed: %s", comp, k.id, exc)
    return ""


def known_matches(records: pd.DataFrame, known_path: Path) -> pd.Series:
    """Per record, the measured material it is ('' when none)."""
    known, by_formula = load_known(known_path)
    comps = records.get(S.COMPOSITION, pd.Series("", index=records.index))
    structs = records.get(S.STRUCTURE, pd.Series(None, index=records.index))
    return pd.Series(
        [match(c, s, known, by_formula) for c, s in zip(comps, structs, strict=True)],
        index=records.index,
        dtype=str,
    )
