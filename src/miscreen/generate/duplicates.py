"""Which generated candidates are materials already known: a reference phase or pool row
(the snapshots, a user's store), a measured material (OBELiX, the run's labelled rows), or
an earlier generated candidate.

A reference phase or an earlier candidate is the same material when the reduced formula is
the same and pymatgen's ``StructureMatcher`` (lattice scaled, so an unrelaxed substituted
cell matches a relaxed one) matches the structures. A measured material is matched as the
screen matches it (:func:`miscreen.screen.known.match`: same reduced formula, or a
structure match through the majority-occupancy approximant of a disordered CIF).
"""

from __future__ import annotations

import logging
from pathlib import Path

from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure

from miscreen.fetch.records import formula_columns
from miscreen.generate.substitute import Generated
from miscreen.screen import known as known_materials
from miscreen.screen.stability import References
from miscreen.store.structure_json import structure_to_json

log = logging.getLogger(__name__)

_MATCHER = StructureMatcher()


def matching_references(structure: Structure, refs: References) -> list[str]:
    """Ids of the reference rows that are this structure (same reduced formula, matched)."""
    formula = structure.composition.reduced_formula
    out = []
    for i, f in enumerate(refs.formula):
        if f != formula:
            continue
        other = refs.structure(i)
        try:
            if other is not None and _MATCHER.fit(structure, other):
                out.append(refs.ids[i])
        except (ValueError, RuntimeError) as exc:
            log.warning("generate: matching against %s failed: %s", refs.ids[i], exc)
    return out


def duplicates(
    candidates: list[Generated], refs: References, known_path: Path | None = None
) -> dict[str, tuple[str, list[str]]]:
    """Per candidate id that is a known material: (what it is, for a reader; the ids of
    the reference rows it matches, which its hull must leave out). Measured materials are
    the run's labelled rows in ``known_path`` (skipped when None or missing)."""
    known, by_formula = [], {}
    if known_path is not None and Path(known_path).is_file():
        known, by_formula = known_materials.load_known(known_path)
    out: dict[str, tuple[str, list[str]]] = {}
    seen: list[Generated] = []
    for cand in candidates:
        hits = matching_references(cand.structure, refs)
        what = f"reference phase {', '.join(hits)}" if hits else ""
        if not what and known:
            _, composition, _ = formula_columns(cand.structure.composition)
            text = structure_to_json(cand.structure)
            what = known_materials.match(composition, text, known, by_formula)
            what = f"measured material {what}" if what else ""
        if not what:
            formula = cand.structure.composition.reduced_formula
            for other in seen:
                same = other.structure.composition.reduced_formula == formula
                if same and _MATCHER.fit(cand.structure, other.structure):
                    what = f"generated candidate {other.id}"
                    break
        if what:
            out[cand.id] = (what, hits)
        seen.append(cand)
    return out
