"""New candidates from a parent structure by ionic substitution.

Two ways to choose the substitutions, both charge-balanced:

- an explicit map, ``{"Ge": ["Si", "Sn"], "S": ["Se", "O"]}``: every combination of the
  map's choices, each element also kept as it is (3 x 3 = 9 structures for LGPS, the parent
  among them);
- pymatgen's data-mined ionic substitution probabilities (Hautier et al., Inorg. Chem. 50,
  656 (2011); :class:`~pymatgen.core.structure_prediction.substitution_probability.
  SubstitutionPredictor`): every charge-balanced substitution whose probability is at least
  ``min_probability``.

The parent's oxidation states are pymatgen's most likely charge-balanced guess (as the MD
ordering guesses them). A disordered parent is ordered first by Ewald energy
(:func:`miscreen.verify.md_ordering.order_structure`). A substitution is isovalent when the
new element takes the replaced ion's oxidation state; otherwise the new element takes its
most common state, and the charge that changes is made up with Li+ when ``aliovalent`` is
asked for: a substitution that raises the cation charge (P5+ for Ge4+) removes Li (the Li
sites made partially occupied, then ordered by Ewald energy; label ``Ge->P,Li-2``), one that
lowers it (Al3+ for Ge4+) adds Li at the interstitial sites of lowest BVSE site energy
(:mod:`miscreen.generate.interstitial`; label ``Ge->Al,Li+2``, the sites recorded).

The probability recorded with every candidate is pymatgen's: the product over the parent's
ions of the conditional probability that the ion is replaced by its new one (the unchanged
ions counted with their probability of staying), NaN for an ion the data do not cover.
"""

from __future__ import annotations

import itertools
import logging
import math
import warnings
from dataclasses import dataclass, field

from pymatgen.core import Composition, Element, PeriodicSite, Species, Structure

from miscreen.generate.interstitial import AddedLithium, with_lithium
from miscreen.potentials import right_handed
from miscreen.verify.md_ordering import guess_oxidation_states, order_structure

log = logging.getLogger(__name__)

LITHIUM = "Li"
GENERATED_PREFIX = "gen"


@dataclass(frozen=True)
class Generated:
    """One new candidate: its structure (ordered, not yet relaxed) and where it came from."""

    id: str
    parent_id: str
    structure: Structure
    substitution: str  # "Ge->Si,S->Se"; "" for the parent itself
    probability: float  # pymatgen's substitution probability (NaN: ions it does not cover)
    oxidation_states: dict[str, float] = field(default_factory=dict)  # one per element
    li_change: int = 0  # Li atoms per cell removed (negative) or added (positive)
    added_li: tuple[AddedLithium, ...] = ()  # where the added Li went, lowest energy first


@dataclass
class Substitutions:
    """The candidates of one parent and the substitutions skipped, with the reason."""

    candidates: list[Generated] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (substitution, reason)


def ordered_parent(structure: Structure) -> Structure:
    """The parent as an ordered, right-handed cell (the lowest-Ewald-energy ordering when
    disordered)."""
    return right_handed(order_structure(structure).structure)


def oxidation_states(structure: Structure) -> dict[str, float]:
    """One charge-balanced oxidation state per element of the (ordered) structure."""
    return guess_oxidation_states(structure.composition)


def label(mapping: dict[str, str]) -> str:
    """``{"Ge": "Si", "S": "Se"}`` -> ``"Ge->Si,S->Se"`` (identities left out, sorted)."""
    return ",".join(f"{a}->{b}" for a, b in sorted(mapping.items()) if a != b)


def candidate_id(parent_id: str, substitution: str) -> str:
    """``gen:<parent>:<substitution>``; the parent itself keeps its own id."""
    return f"{GENERATED_PREFIX}:{parent_id}:{substitution}" if substitution else parent_id


def probability(oxi: dict[str, float], mapping: dict[str, Species]) -> float:
    """pymatgen's probability of the substitution ``mapping`` (old element -> new ion) of
    ions with the oxidation states ``oxi``; NaN when an ion is outside its data."""
    table = _probability_table()
    p = 1.0
    for el, state in oxi.items():
        old = Species(el, state)
        new = mapping.get(el, old)
        if old not in table.species or new not in table.species:
            return math.nan
        p *= table.cond_prob(old, new)
    return float(p)


def _probability_table():  # -> SubstitutionProbability, loaded once
    global _TABLE
    if _TABLE is None:
        from pymatgen.core.structure_prediction.substitution_probability import (
            SubstitutionProbability,
        )

        _TABLE = SubstitutionProbability()
    return _TABLE


_TABLE = None


def new_ion(old: Species, element: str) -> Species:
    """The ion of ``element`` that replaces ``old``: the one of the same sign the substitution
    data find most likely (the same oxidation state for Si or Sn in place of Ge4+, Al3+ or
    P5+ where they replace it), else the common state closest to ``old``'s (Te2- for O2-,
    which the data lack)."""
    table = _probability_table()
    ions = [sp for sp in table.species if sp.symbol == element]
    ions = [sp for sp in ions if (sp.oxi_state > 0) == (old.oxi_state > 0)]
    if old in table.species and ions:
        return max(ions, key=lambda sp: table.cond_prob(old, sp))
    el = Element(element)
    states = el.common_oxidation_states or el.oxidation_states
    if not states:
        raise ValueError(f"{element} has no known oxidation state")
    return Species(element, min(states, key=lambda s: (abs(s - old.oxi_state), -s)))


def substituted(
    parent: Structure,
    parent_id: str,
    oxi: dict[str, float],
    mapping: dict[str, Species],
    aliovalent: bool = False,
) -> Generated:
    """The parent with ``mapping`` (old element -> new ion) applied, the volume scaled by
    the ionic radii (pymatgen's ``RLSVolumePredictor``, the parent as reference), and, for an
    aliovalent substitution, Li+ removed (the cation charge raised) or added at interstitial
    sites (lowered) to balance it. Raises ``ValueError`` with the reason when the result
    cannot be charge-balanced or no interstitial site is far enough from every atom."""
    changes = {el: ion for el, ion in mapping.items() if ion.symbol != el}
    name = label({el: ion.symbol for el, ion in changes.items()})
    for el, ion in changes.items():
        kept = oxi.get(ion.symbol) if ion.symbol not in changes else None
        if kept is not None and kept != ion.oxi_state:
            raise ValueError(
                f"{ion} in place of {el} beside {ion.symbol} at {kept:+g} (mixed valence)"
            )
    counts = parent.composition.element_composition
    excess = sum((ion.oxi_state - oxi[el]) * counts[el] for el, ion in changes.items())
    excess = round(excess, 6)
    if excess and not aliovalent:
        raise ValueError(f"changes the charge by {excess:+g} per cell (aliovalent not asked for)")
    if excess and (not float(excess).is_integer() or excess > counts[LITHIUM]):
        raise ValueError(f"changes the charge by {excess:+g} per cell; no whole Li count balances")
    new_oxi = {el: s for el, s in oxi.items() if el not in changes}
    new_oxi |= {ion.symbol: float(ion.oxi_state) for ion in changes.values()}
    new = parent.copy()
    new.remove_oxidation_states()
    new.replace_species({Element(el): Element(ion.symbol) for el, ion in changes.items()})
    new = scaled_volume(new, new_oxi, parent, oxi)
    added: list[AddedLithium] = []
    if excess > 0:
        new = without_lithium(new, int(excess))
    elif excess < 0:
        new, added = with_lithium(new, new_oxi, int(-excess))
    if excess:
        name = f"{name},{lithium_label(-int(excess))}"
    p = probability(oxi, mapping)
    cid = candidate_id(parent_id, name)
    return Generated(cid, parent_id, new, name, p, new_oxi, -int(excess), tuple(added))


def lithium_label(change: int) -> str:
    """The Li part of a substitution label: ``Li-2`` (removed), ``Li+1`` (added)."""
    return f"{LITHIUM}{change:+d}"


def scaled_volume(
    structure: Structure, oxi: dict[str, float], parent: Structure, parent_oxi: dict[str, float]
) -> Structure:
    """``structure`` with the volume pymatgen predicts from the parent's and the ionic radii
    of both (``RLSVolumePredictor``), else (the two do not match site by site) the parent's
    scaled by the ratio of the summed cubed ionic radii, else unchanged (an ion without a
    radius)."""
    from pymatgen.analysis.structure_prediction.volume_predictor import RLSVolumePredictor

    new, ref = structure.copy(), parent.copy()
    ref.remove_oxidation_states()
    try:
        new.add_oxidation_state_by_element(oxi)
        ref.add_oxidation_state_by_element(parent_oxi)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # its silent fall-back to atomic radii
            volume = RLSVolumePredictor().predict(new, ref)
    except (ValueError, KeyError, TypeError, ZeroDivisionError, UserWarning):
        volume = parent.volume * cubed_radii(new) / cubed_radii(ref)
    if not math.isfinite(volume) or volume <= 0:
        log.info("generate: volume of %s kept (no ionic radii)", new.composition.reduced_formula)
        return structure
    out = structure.copy()
    out.scale_lattice(volume)
    return out


def cubed_radii(structure: Structure) -> float:
    """Sum over the sites of the cubed ionic radius (NaN when an ion has none)."""
    radii = [getattr(site.specie, "ionic_radius", None) for site in structure]
    return math.nan if any(r is None for r in radii) else float(sum(r**3 for r in radii))


def without_lithium(structure: Structure, remove: int) -> Structure:
    """``remove`` Li atoms taken out: every Li site made equally vacant, then the
    lowest-Ewald-energy ordering (oxidation states guessed again)."""
    n_li = int(structure.composition[LITHIUM])
    keep = (n_li - remove) / n_li
    partial = structure.copy()
    for i, site in enumerate(partial):
        if site.specie.symbol == LITHIUM:
            partial.replace(i, {LITHIUM: keep}, coords=site.frac_coords)
    return order_structure(partial).structure


def explicit(
    parent: Structure,
    parent_id: str,
    choices: dict[str, list[str]],
    aliovalent: bool = False,
) -> Substitutions:
    """Every combination of the map's choices (each element also kept as it is), the
    parent itself included."""
    oxi = oxidation_states(parent)
    unknown = sorted(set(choices) - set(oxi))
    if unknown:
        raise ValueError(f"substitution map names {', '.join(unknown)}, not in {parent_id}")
    elements = sorted(choices)
    options = [[el, *[c for c in choices[el] if c != el]] for el in elements]
    out = Substitutions()
    for combo in itertools.product(*options):
        mapping = {
            el: new_ion(Species(el, oxi[el]), new) for el, new in zip(elements, combo, strict=True)
        }
        _add(out, parent, parent_id, oxi, mapping, aliovalent)
    return out


def data_mined(
    parent: Structure,
    parent_id: str,
    min_probability: float,
    keep: tuple[str, ...] = (LITHIUM,),
    limit: int = 50,
    radioactive: bool = False,
) -> Substitutions:
    """The parent and its charge-balanced substitutions whose probability (pymatgen's
    ``SubstitutionPredictor``) is at least ``min_probability``, the elements in ``keep``
    unchanged and radioactive elements left out unless asked for; the ``limit`` most
    probable, best first."""
    from pymatgen.core.structure_prediction.substitution_probability import (
        SubstitutionPredictor,
    )

    oxi = oxidation_states(parent)
    comp = {Species(el, s): parent.composition[el] for el, s in oxi.items()}
    predictor = SubstitutionPredictor(threshold=min_probability)
    found = predictor.composition_prediction(comp, to_this_composition=False)
    found.sort(key=lambda d: -d["probability"])
    out = Substitutions()
    _add(out, parent, parent_id, oxi, {}, False)
    for pred in found:
        mapping = {old.symbol: new for old, new in pred["substitutions"].items()}
        changed = {el: ion for el, ion in mapping.items() if ion.symbol != el}
        if not changed or any(el in keep for el in changed):
            continue
        if not radioactive and any(Element(ion.symbol).is_radioactive for ion in changed.values()):
            continue
        if len(out.candidates) > limit:
            break
        _add(out, parent, parent_id, oxi, mapping, False)
    return out


def _add(
    out: Substitutions,
    parent: Structure,
    parent_id: str,
    oxi: dict[str, float],
    mapping: dict[str, Species],
    aliovalent: bool,
) -> None:
    try:
        out.candidates.append(substituted(parent, parent_id, oxi, mapping, aliovalent))
    except ValueError as exc:
        name = label({el: ion.symbol for el, ion in mapping.items()})
        out.skipped.append((name, str(exc)))


def charge(structure: Structure, oxi: dict[str, float]) -> float:
    """The cell's total charge with one oxidation state per element (0: balanced)."""
    comp: Composition = structure.composition.element_composition
    return float(sum(oxi[el.symbol] * n for el, n in comp.items()))


def species_map(substitution: str) -> tuple[dict[str, str], int]:
    """A candidate's substitution label back as (old element -> new element, Li per ordered
    cell removed, negative, or added): ``"Ge->Si,S->Se,Li-1"`` -> ``({"Ge": "Si", "S":
    "Se"}, -1)``, ``"Ge->Al,Li+2"`` -> ``({"Ge": "Al"}, 2)``."""
    mapping, change = {}, 0
    for part in filter(None, substitution.split(",")):
        if part.startswith(LITHIUM) and "->" not in part:
            change = int(part[len(LITHIUM) :])
        else:
            old, new = part.split("->")
            mapping[old] = new
    return mapping, change


def substituted_parent(parent: Structure, candidate: Structure, substitution: str) -> Structure:
    """The parent as its source gives it (partial occupancies kept) with the candidate's
    substitution applied to its species on every site, partial sites included, the Li
    occupancies scaled to the candidate's Li per other atom where Li was removed or added
    (added Li fills the partially occupied Li sites, none above full: see
    :func:`li_scaled`), and the lattice scaled isotropically to the candidate's volume per
    atom (atoms counted by occupancy): the input the model learned on (mostly disordered
    experimental cells), carrying what relaxing the ordered candidate says of its size."""
    mapping, change = species_map(substitution)
    out = parent.copy()
    out.remove_oxidation_states()
    if mapping:
        out.replace_species({Element(a): Element(b) for a, b in mapping.items()})
    if change:
        out = li_scaled(out, candidate)
    comp = out.composition
    out.scale_lattice(candidate.volume / candidate.composition.num_atoms * comp.num_atoms)
    return out


def _li_ratio(comp: Composition) -> float:
    return comp[LITHIUM] / (comp.num_atoms - comp[LITHIUM])


def li_scaled(structure: Structure, candidate: Structure) -> Structure:
    """``structure`` with its Li occupancies scaled to the candidate's Li per other atom.
    Fewer Li: every Li occupancy scaled down. More Li: the Li of the sites not yet full
    scaled up, each capped where its site is full (the parent's full Li sites, e.g. LGPS's
    4d, stay as they are); where the partial sites cannot take it all, the Li they can."""
    comp = structure.composition
    want = _li_ratio(candidate.composition) * (comp.num_atoms - comp[LITHIUM])
    full = [_li_on(site) if site.species.num_atoms >= 1 - 1e-6 else 0.0 for site in structure]
    fixed = sum(full) if want > comp[LITHIUM] else 0.0
    movable = comp[LITHIUM] - fixed
    factor = (want - fixed) / movable if movable > 0 else 1.0
    out = structure.copy()
    for i, site in enumerate(out):
        li = _li_on(site)
        if li <= 0 or (fixed and full[i]):
            continue
        room = 1.0 - (site.species.num_atoms - li)
        occ = {str(el): n for el, n in site.species.items() if el.symbol != LITHIUM}
        out.replace(i, occ | {LITHIUM: min(li * factor, room)}, coords=site.frac_coords)
    return out


def _li_on(site: PeriodicSite) -> float:
    return float(site.species[LITHIUM])
