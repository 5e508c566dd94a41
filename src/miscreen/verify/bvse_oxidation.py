"""Oxidation states for BVSE: given, from bond valences, or guessed from the composition.

In order (the one used is recorded): ``given`` (every species carries one), ``bond-valence``
(pymatgen's ``BVAnalyzer``, structure-aware; ordered structures only, and only if every
anion it finds has Li+ BVSE parameters), ``composition`` (one state per element from
pymatgen's ICSD lists, charge-balanced within ``CHARGE_TOLERANCE``, ranked by pymatgen's
ICSD occurrence table).
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import numpy as np
from pymatgen.core import Composition, Species, Structure

from miscreen.schema import MOBILE_ION
from miscreen.verify.bvse_params import MOBILE_CHARGE, BVSEError, li_anions

# How oxidation states were obtained (BarrierResult.oxidation / BVSE_OXIDATION).
OXI_GIVEN, OXI_BOND_VALENCE, OXI_COMPOSITION = "given", "bond-valence", "composition"

CHARGE_TOLERANCE = 0.05  # composition guess: |net charge| / total |charge|


def with_oxidation_states(
    structure: Structure, composition: Composition | None = None
) -> tuple[Structure, str]:
    """A copy of ``structure`` decorated with oxidation states, and how they were found.

    ``composition``: the material's own composition (e.g. OBELiX's ``True Composition``).
    It is used when the structure's composition cannot be charge-balanced, typically
    because its Li sites are missing (OBELiX's LLTO CIFs) or their occupancies are off:
    BVSE removes Li anyway, but the framework's states come from charge balance.
    """
    species = [sp for site in structure for sp in site.species]
    if all(isinstance(sp, Species) and sp.oxi_state is not None for sp in species) and any(
        (sp.oxi_state or 0) < 0 for sp in species
    ):
        return structure.copy(), OXI_GIVEN
    structure = structure.copy()
    structure.remove_oxidation_states()  # e.g. all-zero states in some pymatgen files
    if structure.is_ordered:  # on disordered cells it is slow and can give e.g. O- with La2+
        decorated = _bond_valence_states(structure)
        if decorated is not None:
            return decorated, OXI_BOND_VALENCE
    try:
        states = _composition_states(structure.composition.element_composition)
    except BVSEError:
        if composition is None:
            raise
        states = _composition_states(composition.element_composition)
        missing = {el.symbol for el in structure.composition.elements} - set(states)
        if missing:
            raise BVSEError(
                f"the structure has {sorted(missing)}, which its composition lacks"
            ) from None
    structure.add_oxidation_state_by_element(states)
    return structure, OXI_COMPOSITION


def _bond_valence_states(structure: Structure) -> Structure | None:
    """pymatgen's BVAnalyzer, kept only if every anion it finds has Li+ parameters."""
    from pymatgen.analysis.bond_valence import BVAnalyzer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            decorated = BVAnalyzer().get_oxi_state_decorated_structure(structure)
        except Exception:  # BVAnalyzer raises bare ValueError/RuntimeError/... on failure
            return None
    anions = {
        (sp.symbol, round(sp.oxi_state or 0)) for sp in decorated.species if (sp.oxi_state or 0) < 0
    }
    return decorated if anions <= li_anions() else None


@functools.cache
def _icsd_occurrence() -> dict[tuple[str, int], float]:
    """pymatgen's ICSD occurrence counts of each (element, oxidation state)."""
    import pymatgen.core
    from monty.serialization import loadfn

    data = loadfn(Path(pymatgen.core.__file__).parent / "icsd_bv.yaml")["occurrence"]
    out: dict[tuple[str, int], float] = {}
    for name, count in data.items():
        sp = Species.from_str(name)
        out[(sp.symbol, round(sp.oxi_state or 0))] = float(count)
    return out


def _composition_states(comp: Composition) -> dict[str, int]:
    """One oxidation state per element: charge-balanced within tolerance, most common.

    Candidates are pymatgen's ICSD (else common) states; negative ones only where Li+ has
    BVSE parameters with that anion, so the guess never invents e.g. C4- or O-. Li is +1.
    """
    if MOBILE_ION not in {el.symbol for el in comp}:
        raise BVSEError("no Li in the structure or its composition")
    best = _balanced_states(comp, only_li_anions=True)
    if best is not None:
        return best
    other = _balanced_states(comp, only_li_anions=False)
    anions = sorted(
        f"{el}{q:+d}" for el, q in (other or {}).items() if (el, q) not in li_anions() and q < 0
    )
    if anions:
        raise BVSEError(
            f"{comp.reduced_formula} needs the anion(s) {', '.join(anions)}, which have no Li+ "
            "BVSE parameters (only N3-, O2-, F-, S2-, Cl-, Se2-, Br-, Te2-, I-)"
        )
    raise BVSEError(f"no charge-balanced oxidation states for {comp.reduced_formula}")


def _balanced_states(comp: Composition, only_li_anions: bool) -> dict[str, int] | None:
    """Most common per-element states within ``CHARGE_TOLERANCE`` of neutral, or None."""
    symbols = [el.symbol for el in comp]
    amounts = np.array([comp[el] for el in comp], dtype=float)
    options: list[tuple[int, ...]] = []
    for el in comp:
        known = el.icsd_oxidation_states or el.common_oxidation_states or (0,)
        states = tuple(
            q for q in known if q > 0 or not only_li_anions or (el.symbol, q) in li_anions()
        )
        options.append((MOBILE_CHARGE,) if el.symbol == MOBILE_ION else states or (0,))
    occ = _icsd_occurrence()
    pick = np.indices([len(o) for o in options]).reshape(len(options), -1).T  # (k, n_el)
    combos = np.column_stack(
        [np.asarray(o, dtype=float)[pick[:, i]] for i, o in enumerate(options)]
    )
    prior = np.column_stack(
        [
            np.array([occ.get((s, q), 0.0) for q in o])[pick[:, i]]
            for i, (s, o) in enumerate(zip(symbols, options, strict=True))
        ]
    )
    net = np.abs(combos @ amounts) / np.maximum(np.abs(combos) @ amounts, 1e-9)
    ok = np.flatnonzero(net <= CHARGE_TOLERANCE)
    if ok.size == 0:
        return None
    best = ok[np.argmax(prior[ok] @ amounts)]
    return {s: round(q) for s, q in zip(symbols, combos[best], strict=True)}
