"""Parsing recorded responses of real OPTIMADE providers (../shared/fixtures/optimade)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from miscreen import schema as S
from miscreen.fetch.http import RetryingSession, RetryPolicy
from miscreen.fetch.optimade import (
    OptimadeError,
    entries_to_frames,
    entry_to_record,
    first_page_url,
    parse_page,
    resolve_provider,
    structures_url,
    validate_filter,
)
from miscreen.fetch.parsing import structure_from_json

from .conftest import FIXTURES

PAGES = {
    "mcloud-optimade-sample.json": (15, "optimade-sample/optimade/structures?page_offset=15"),
    "mcloud-optimade-sample_single.json": (1, None),
    "mp-optimade-structures-mp-7000.json": (1, None),
}


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def occupancies(entry: dict) -> list[dict[str, float]]:
    """Per site {element: concentration} as the provider states it (vacancies dropped)."""
    species = {sp["name"]: sp for sp in entry["attributes"]["species"]}
    out = []
    for name in entry["attributes"]["species_at_sites"]:
        sp = species[name]
        out.append(
            {
                s: c
                for s, c in zip(sp["chemical_symbols"], sp["concentration"], strict=True)
                if s != "vacancy"
            }
        )
    return out


@pytest.mark.parametrize("name", sorted(PAGES))
def test_every_recorded_page_parses_with_counts_links_and_occupancies(name: str) -> None:
    count, next_tail = PAGES[name]
    page = parse_page(load(name))
    assert len(page.items) == count
    if next_tail is None:
        assert page.next_cursor is None
    else:
        assert page.next_cursor is not None and page.next_cursor.endswith(next_tail)
    assert page.meta["api_version"] in {"1.0.1", "1.1.0"}
    records, failures = entries_to_frames(page.items, f"optimade:{name}", "page 0")
    assert failures.empty, failures.to_dict("records")
    assert list(records[S.ID]) == [str(e["id"]) for e in page.items]
    for entry, js in zip(page.items, records[S.STRUCTURE], strict=True):
        structure = structure_from_json(js)
        got = [{el.symbol: occ for el, occ in site.species.items()} for site in structure]
        assert got == occupancies(entry)
        assert (
            structure.composition.reduced_formula
            == records.loc[records[S.ID] == str(entry["id"]), S.FORMULA].item()
        )


def test_non_periodic_entries_are_failures_with_a_reason() -> None:
    """mc2d records its 2D layers with dimension_types [0, 0, 0]: not bulk crystals."""
    page = parse_page(load("mcloud-mc2d.json"))
    assert len(page.items) == 15
    assert page.next_cursor == (
        "https://aiida.materialscloud.org/2dstructures/optimade/structures?page_offset=15"
    )
    records, failures = entries_to_frames(page.items, "optimade:mc2d", "page 0")
    assert records.empty and len(failures) == 15
    assert (
        failures["reason"]
        .str.contains(r"not a periodic crystal: dimension_types \[0, 0, 0\]")
        .all()
    )


def test_partial_occupancies_survive_conversion() -> None:
    entry = copy.deepcopy(load("mcloud-optimade-sample_single.json")["data"])
    first = entry["attributes"]["species_at_sites"][0]
    for sp in entry["attributes"]["species"]:
        if sp["name"] == first:
            sp["chemical_symbols"] = [sp["chemical_symbols"][0], "Li", "vacancy"]
            sp["concentration"] = [0.5, 0.3, 0.2]
            sp.pop("mass", None)
    entry["attributes"]["structure_features"] = ["disorder"]  # required by the specification
    structure = structure_from_json(entry_to_record(entry, "t")[S.STRUCTURE])
    assert not structure.is_ordered
    assert {el.symbol: occ for el, occ in structure[0].species.items()}["Li"] == 0.3
    assert sum(structure[0].species.values()) == pytest.approx(0.8)


def test_mp_provider_field_mp_stability_is_kept() -> None:
    entry = load("mp-optimade-structures-mp-7000.json")["data"]
    row = entry_to_record(entry, "optimade:mp")
    props = json.loads(row["properties"])
    assert props["_mp_stability"] == entry["attributes"]["_mp_stability"]
    assert props["_mp_chemical_system"] == entry["attributes"]["_mp_chemical_system"]
    assert row[S.E_HULL] == 0.0  # gga_gga+u_r2scan hull energy of mp-7000
    assert row[S.ID] == "mp-7000"


@pytest.mark.parametrize(
    ("breakage", "reason"),
    [
        (lambda a: a.pop("lattice_vectors"), "missing lattice"),
        (lambda a: a["lattice_vectors"].__setitem__(0, None), "missing lattice"),
        (lambda a: a["species_at_sites"].__setitem__(0, "Xx9"), "inconsistent species"),
        (lambda a: a["cartesian_site_positions"].pop(), "inconsistent species"),
        (
            lambda a: a.__setitem__(
                "species", [{"name": "Si", "chemical_symbols": ["Qq"], "concentration": [1.0]}]
            ),
            "structure",
        ),
    ],
)
def test_bad_entries_become_failures_and_the_page_continues(breakage, reason: str) -> None:
    entries = copy.deepcopy(load("mcloud-optimade-sample.json")["data"])
    entries[0]["attributes"]["species_at_sites"] = ["Si"] * len(
        entries[0]["attributes"]["species_at_sites"]
    )
    entries[0]["attributes"]["species"] = [
        {"name": "Si", "chemical_symbols": ["Si"], "concentration": [1.0]}
    ]
    breakage(entries[0]["attributes"])
    records, failures = entries_to_frames(entries, "optimade:x", "page 4 (http://x)")
    assert len(records) == 14
    assert len(failures) == 1
    assert failures.iloc[0][S.ID] == str(entries[0]["id"])
    assert reason in failures.iloc[0]["reason"]
    assert "page 4 (http://x) entry 0" in failures.iloc[0]["reason"]


def test_filters_are_validated_against_the_grammar() -> None:
    assert validate_filter('elements HAS "Li" AND nelements<=4') == (
        'elements HAS "Li" AND nelements<=4'
    )
    with pytest.raises(OptimadeError, match=r"(?s)invalid OPTIMADE filter.*double quotes"):
        validate_filter("elements HAS Li AND")


def test_structure_urls() -> None:
    assert structures_url("http://h/optimade") == "http://h/optimade/v1/structures"
    assert structures_url("http://h/optimade/v1/") == "http://h/optimade/v1/structures"
    assert first_page_url("http://h", 'elements HAS "Li"', 7) == (
        "http://h/v1/structures?filter=elements+HAS+%22Li%22&page_limit=7"
    )


def test_provider_resolves_through_providers_list_and_index_links(static_server) -> None:
    url, routes = static_server
    providers = load("mcloud-providers_optimade.json")
    for p in providers["data"]:
        if p["id"] == "mcloud":
            p["attributes"]["base_url"] = f"{url}/mcloud-index"
    routes["/providers.json"] = json.dumps(providers).encode()
    index = load("mcloud-index_mcloud.json")
    routes["/mcloud-index/v1/links"] = json.dumps(index).encode()
    session = RetryingSession(RetryPolicy(attempts=1, timeout=5))
    dbs = resolve_provider(session, "mcloud", f"{url}/providers.json")
    children = [
        e["attributes"]["base_url"]
        for e in index["data"]
        if e["attributes"]["link_type"] == "child"
    ]
    assert children and [d.base_url for d in dbs] == children
    assert {d.provider for d in dbs} == {"mcloud"}
    with pytest.raises(OptimadeError, match=r"unknown OPTIMADE provider 'nope'.*mcloud"):
        resolve_provider(session, "nope", f"{url}/providers.json")
    with pytest.raises(OptimadeError, match=r"no OPTIMADE index.*--base-url"):
        resolve_provider(session, "aiida", f"{url}/providers.json")


def test_fixture_folder_is_the_shared_one() -> None:
    assert Path(FIXTURES, "mcloud-mc2d.json").is_file()
