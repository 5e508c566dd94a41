"""Structure JSON read as data: the decoder of pymatgen's structure dicts for untrusted
input (local files, Materials Project, the store, verify), re-exported by
:mod:`miscreen.fetch.parsing`; it lives here, below fetch, so that the store can use it.

Lattice, species, coordinates, labels and plain JSON properties are built here, never by
pymatgen's ``Structure.from_dict``, whose site properties go through ``MontyDecoder``: that
imports whatever module a ``{"@module", "@class"}`` pair names, calls other modules'
``from_dict``, builds dataclasses and pydantic models and hands back any callable
(``@callable``). A property holding such a pair refuses the structure with a reason; a
``@module``/``@class`` on the structure, lattice, site or species must name pymatgen's own
class (it is then ignored). JSON is size-checked (:func:`check_json_size`) before anything
is built from it; the limits are documented in :mod:`miscreen.fetch.parsing`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pymatgen.core import Composition, DummySpecies, Element, Lattice, Species, Structure

MAX_SITES = 2000
MAX_JSON_CHARS = 5_000_000
MAX_JSON_DEPTH = 20
MAX_JSON_ITEMS = 10_000
MAX_JSON_VALUES = 200_000
MAX_OCCUPANCY = 1.05  # as CifParser's occupancy_tolerance
# (@module, @class) pairs a structure dict may carry where pymatgen writes them
PYMATGEN_CLASSES = frozenset(
    {
        ("pymatgen.core.structure", "Structure"),
        ("pymatgen.core.structure", "IStructure"),
        ("pymatgen.core.lattice", "Lattice"),
        ("pymatgen.core.sites", "PeriodicSite"),
        ("pymatgen.core.periodic_table", "Element"),
        ("pymatgen.core.periodic_table", "Species"),
        ("pymatgen.core.periodic_table", "DummySpecies"),
    }
)
SERIALIZED_MARKS = ("@module", "@class", "@callable", "@bound")


def structure_to_json(structure: Structure) -> str:
    """The structure as pymatgen's JSON dict (read back by :func:`structure_from_json`)."""
    return json.dumps(structure.as_dict())


def structure_from_json(text: str) -> Structure:
    """The one reader of structure JSON (the store, run folders, verify): size-checked,
    then built as data by :func:`structure_from_dict`. Malformed JSON raises
    ``json.JSONDecodeError`` (a ``ValueError``)."""
    if len(text) > MAX_JSON_CHARS:
        raise ValueError(f"structure JSON of {len(text):,} characters (limit {MAX_JSON_CHARS:,})")
    try:
        data = json.loads(text)
    except RecursionError:
        raise ValueError(f"structure JSON nested too deeply (limit {MAX_JSON_DEPTH})") from None
    check_json_size(data)
    return structure_from_dict(data)


def check_json_size(value: object) -> None:
    """Refuse decoded JSON nested deeper than ``MAX_JSON_DEPTH``, with a list or object of
    more than ``MAX_JSON_ITEMS`` entries, or of more than ``MAX_JSON_VALUES`` values.

    Walks one nesting level at a time: the containers of a level are counted by their
    lengths (every entry is one value) and only nested containers are visited, so plain
    numbers and strings cost one type check each."""
    level = [value] if isinstance(value, dict | list) else []
    count, depth = 1, 1
    while level:
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"JSON nested more than {MAX_JSON_DEPTH} levels deep (limit)")
        nested: list[dict | list] = []
        for item in level:
            if len(item) > MAX_JSON_ITEMS:
                kind = "an object" if isinstance(item, dict) else "a list"
                raise ValueError(
                    f"{kind} of {len(item):,} entries (limit {MAX_JSON_ITEMS:,} per list or object)"
                )
            count += len(item)
            entries = item.values() if isinstance(item, dict) else item
            nested += [v for v in entries if isinstance(v, dict | list)]
        if count > MAX_JSON_VALUES:
            raise ValueError(f"more than {MAX_JSON_VALUES:,} JSON values (limit)")
        level, depth = nested, depth + 1


def structure_from_dict(data: object) -> Structure:
    """A ``Structure`` built as data from pymatgen's dict form (``Structure.as_dict()``):
    lattice (``matrix`` or ``a b c alpha beta gamma``), sites (``species``, ``abc``,
    ``label``, ``properties``), ``charge`` and ``properties``. Raises ``ValueError`` naming
    what is wrong, including properties that hold a serialized object (see the module)."""
    if not isinstance(data, dict):
        raise ValueError(f"structure is a {type(data).__name__}, expected a pymatgen dict")
    _check_class(data, "structure")
    sites = data.get("sites")
    if not isinstance(sites, list) or not sites:
        raise ValueError("structure has no 'sites' list")
    if len(sites) > MAX_SITES:
        raise ValueError(f"structure has {len(sites)} sites (> {MAX_SITES}); too large")
    lattice = _lattice(data.get("lattice"))
    compositions: dict[tuple, Composition] = {}  # sites of one species share one object
    built = [_site(site, f"site {i}", compositions) for i, site in enumerate(sites)]
    charge = data.get("charge")
    if charge is not None and not _is_number(charge):
        raise ValueError(f"structure charge {charge!r} is not a number")
    properties = _plain(data.get("properties") or {}, "structure properties")
    if not isinstance(properties, dict):
        raise ValueError("structure properties are not a JSON object")
    # what Structure.from_sites does, without building every site twice: a property on
    # some sites only is None on the others
    site_properties: dict[str, list] = {}
    for i, site in enumerate(built):
        for key, value in site.properties.items():
            site_properties.setdefault(key, [None] * len(built))[i] = value
    return Structure(
        lattice,
        [site.species for site in built],
        [site.abc for site in built],
        charge=charge,
        site_properties=site_properties,
        labels=[site.label for site in built],
        properties=properties,
    )


def _check_class(data: dict, where: str) -> None:
    """Refuse a ``@module``/``@class`` (or ``@callable``) that is not pymatgen's own class."""
    if not any(k in data for k in SERIALIZED_MARKS):
        return
    named = (data.get("@module"), data.get("@class"))
    if "@callable" in data or "@bound" in data or named not in PYMATGEN_CLASSES:
        raise ValueError(
            f"{where} names {named[0]!r}.{named[1]!r}, not a pymatgen structure class; "
            f"structures are read as data only"
        )


def _plain(value: Any, where: str) -> Any:
    """``value`` when it is plain JSON data; ``ValueError`` when any object in it holds
    ``@module``/``@class``/``@callable`` (a serialized object pymatgen would import)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            marks = [k for k in SERIALIZED_MARKS if k in item]
            if marks:
                shown = {k: str(item[k])[:40] for k in marks}
                raise ValueError(
                    f"{where} hold a serialized object {shown} (structures are read as data "
                    f"only; remove it)"
                )
            if not all(isinstance(k, str) for k in item):
                raise ValueError(f"{where} have a key that is not a string")
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif not (item is None or isinstance(item, str | int | float | bool)):
            raise ValueError(f"{where} hold a {type(item).__name__}, not plain JSON data")
    return value


def _numbers(value: object, n: int, what: str) -> list[float]:
    if not isinstance(value, list | tuple) or len(value) != n or not all(map(_is_number, value)):
        raise ValueError(f"{what} is not a list of {n} numbers: {str(value)[:80]}")
    return [float(x) for x in value]


def _lattice(data: object) -> Lattice:
    if not isinstance(data, dict):
        raise ValueError("structure has no 'lattice' object")
    _check_class(data, "lattice")
    pbc = data.get("pbc", (True, True, True))
    if (
        not isinstance(pbc, list | tuple)
        or len(pbc) != 3
        or not all(isinstance(p, bool) for p in pbc)
    ):
        raise ValueError(f"lattice pbc {str(pbc)[:40]} is not three true/false values")
    if "matrix" in data:
        rows = data["matrix"]
        if not isinstance(rows, list | tuple) or len(rows) != 3:
            raise ValueError("lattice matrix is not three rows of three numbers")
        return Lattice([_numbers(r, 3, "lattice matrix row") for r in rows], pbc=tuple(pbc))
    abc = _numbers([data.get(k) for k in ("a", "b", "c")], 3, "lattice a b c")
    angles = _numbers([data.get(k) for k in ("alpha", "beta", "gamma")], 3, "lattice angles")
    return Lattice.from_parameters(*abc, *angles, pbc=tuple(pbc))


@dataclass(frozen=True)
class _SiteData:
    """One site as checked data, before the structure is built."""

    species: Composition
    abc: list[float]
    properties: dict
    label: str | None


def _site(data: object, where: str, compositions: dict[tuple, Composition]) -> _SiteData:
    """One site checked; its species as a ``Composition`` from ``compositions`` (one object
    per distinct species and occupancies of a structure, as ``Structure.from_sites``
    shares them), so pymatgen builds each distinct one once."""
    if not isinstance(data, dict):
        raise ValueError(f"{where} is a {type(data).__name__}, expected an object")
    _check_class(data, where)
    entries = data.get("species")
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{where} has no 'species' list")
    species: dict[Element | Species | DummySpecies, float] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise ValueError(f"{where} species entry is a {type(entry).__name__}")
        _check_class(entry, f"{where} species")
        occu = _number(entry.get("occu"), f"{where} occupancy")
        if not 0 < occu <= MAX_OCCUPANCY:  # pymatgen drops a species of occupancy 0 silently
            raise ValueError(f"{where} occupancy {occu} is outside (0, {MAX_OCCUPANCY}]")
        species[_species(entry, where)] = occu
    key = tuple(species.items())
    composition = compositions.get(key)
    if composition is None:
        composition = compositions[key] = Composition(species)
    label = data.get("label")
    if label is not None and not isinstance(label, str):
        raise ValueError(f"{where} label is not a string")
    properties = data.get("properties") or {}
    if properties:
        properties = _plain(properties, f"{where} properties")
        if not isinstance(properties, dict):
            raise ValueError(f"{where} properties are not a JSON object")
    abc = _numbers(data.get("abc"), 3, f"{where} abc")
    return _SiteData(composition, abc, properties, label)


def _species(entry: dict, where: str) -> Element | Species | DummySpecies:
    """pymatgen's own rule: an oxidation state makes a ``Species`` (``DummySpecies`` for a
    symbol that is not an element), otherwise an ``Element``."""
    symbol = entry.get("element")
    if not isinstance(symbol, str) or not 0 < len(symbol) <= 8:
        raise ValueError(f"{where} species element {str(symbol)[:20]!r} is not a symbol")
    spin = entry.get("spin")
    if spin is not None and not _is_number(spin):
        raise ValueError(f"{where} species spin {str(spin)[:20]!r} is not a number")
    if "oxidation_state" not in entry:
        try:
            return Element(symbol)
        except ValueError:
            raise ValueError(f"{where}: {symbol!r} is not an element") from None
    oxi = entry["oxidation_state"]
    if oxi is not None and not _is_number(oxi):
        raise ValueError(f"{where} oxidation state {str(oxi)[:20]!r} is not a number")
    try:
        return _species_object(symbol, oxi, spin)
    except ValueError as exc:
        raise ValueError(f"{where}: species {symbol!r}: {exc}") from None


@lru_cache(maxsize=4096)
def _species_object(symbol: str, oxi: float | None, spin: float | None) -> Species | DummySpecies:
    """One ``Species`` object per distinct (checked) symbol, oxidation state and spin. Equal
    keys share it (-2 and -2.0 alike), as pymatgen's own cache (``get_el_sp``) maps every
    Composition key to the first equal species it saw."""
    kind = Species if Element.is_valid_symbol(symbol) else DummySpecies
    return kind(symbol, oxi, spin=spin)


def _number(value: object, what: str) -> float:
    if not _is_number(value):
        raise ValueError(f"{what} {str(value)[:20]!r} is not a number")
    return float(value)  # type: ignore[arg-type]


def _is_number(value: object) -> bool:
    """A finite int or float (JSON's NaN and Infinity extensions are not numbers here)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
