"""Structures are data (issue 27, points 1 and 2): nothing in a JSONL line, a Materials
Project document or a stored structure imports a module or builds another module's
objects, and a line costs no more than its size says. Each payload below made pymatgen's
``Structure.from_dict`` (``MontyDecoder`` on site properties) import its module."""

from __future__ import annotations

import json
import sys
import tracemalloc
import uuid
from pathlib import Path

import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from miscreen import schema as S
from miscreen.config import StoreSource
from miscreen.fetch.jsonl_files import jsonl_rows
from miscreen.fetch.parsing import (
    MAX_JSON_CHARS,
    MAX_JSON_DEPTH,
    MAX_JSON_ITEMS,
    MAX_JSON_VALUES,
    MAX_SITES,
    structure_from_json,
)
from miscreen.fetch.records import structure_record
from miscreen.fetch.sources import load_source
from miscreen.store.structures import SourceQuery, StructureStore

PLANTED = """
import dataclasses
import pathlib

import pydantic

pathlib.Path(__file__).with_suffix(".imported").write_text("imported")


@dataclasses.dataclass
class Point:
    x: int = 0


class Model(pydantic.BaseModel):
    x: int = 0


def hello():
    return "called"
"""


def li2o() -> dict:
    s = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.61), ["Li", "O"], [[0.25] * 3, [0] * 3])
    return json.loads(json.dumps(s.as_dict()))


@pytest.fixture
def planted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """A module on sys.path that leaves a marker file when imported: (name, marker)."""
    name = f"miscreen_planted_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "planted"
    folder.mkdir()
    (folder / f"{name}.py").write_text(PLANTED)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, "this", raising=False)
    return name, folder / f"{name}.imported"


def payloads(module: str) -> dict[str, object]:
    return {
        "zen": {"@module": "this", "@class": "s"},
        "callable": {"@module": module, "@callable": "hello"},
        "dataclass": {"@module": module, "@class": "Point", "x": 1},
        "pydantic": {"@module": module, "@class": "Model", "x": 1},
        "nested": {"a": [1, {"b": {"@module": module, "@class": "Point"}}]},
    }


@pytest.mark.parametrize("kind", ["zen", "callable", "dataclass", "pydantic", "nested"])
def test_a_jsonl_site_property_naming_a_module_imports_nothing(
    planted: tuple[str, Path], tmp_path: Path, kind: str
) -> None:
    module, marker = planted
    good = li2o()
    evil = li2o()
    evil["sites"][0]["properties"] = {"evil": payloads(module)[kind]}
    path = tmp_path / "evil.jsonl"
    lines = [{"material_id": "good", "structure": good}, {"material_id": "evil", "structure": evil}]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    before = set(sys.modules)
    rows = jsonl_rows(path, "test")
    assert not {"this", module} & (set(sys.modules) - before)
    assert "this" not in sys.modules and module not in sys.modules and not marker.exists()
    assert rows[0].record is not None
    assert rows[1].record is None
    assert "evil.jsonl line 2" in rows[1].reason and "serialized object" in rows[1].reason


@pytest.mark.parametrize(
    ("where", "why"),
    [
        ("top", "not a pymatgen structure class"),
        ("lattice", "not a pymatgen structure class"),
        ("species", "not a pymatgen structure class"),
        ("structure_properties", "serialized object"),
    ],
)
def test_a_module_named_anywhere_in_a_structure_is_refused(
    planted: tuple[str, Path], where: str, why: str
) -> None:
    module, marker = planted
    d = li2o()
    payload = {"@module": module, "@class": "Point"}
    if where == "top":
        d.update(payload)
    elif where == "lattice":
        d["lattice"].update(payload)
    elif where == "species":
        d["sites"][0]["species"][0].update(payload)
    else:
        d["properties"] = {"p": payload}
    with pytest.raises(ValueError, match=why):
        structure_from_json(json.dumps(d))
    assert module not in sys.modules and not marker.exists()


def test_pymatgen_written_structures_read_back_the_same() -> None:
    s = Structure(
        Lattice.hexagonal(3, 5),
        [{"Li+": 0.5}, "O2-"],
        [[0, 0, 0], [0.5, 0.5, 0.5]],
        site_properties={"magmom": [0.0, [1, 2, 3]]},
        labels=["Li1", "O1"],
        charge=1.0,
        properties={"note": {"a": [1, None, "x"]}},
    )
    back = structure_from_json(json.dumps(s.as_dict()))
    assert back == s and back.as_dict() == s.as_dict()


def test_a_property_on_some_sites_only_is_none_on_the_others() -> None:
    """As ``Structure.from_sites`` has it: a missing site property reads as None, and a
    site without a label is labelled by its species."""
    d = Structure(Lattice.cubic(4), ["Li", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]).as_dict()
    d["sites"][1]["properties"] = {"magmom": 2.0}
    del d["sites"][0]["label"]
    back = structure_from_json(json.dumps(d))
    assert back.site_properties == {"magmom": [None, 2.0]}
    assert back.labels == ["Li", "O"]


def test_a_store_written_before_the_fix_is_rechecked_on_read(
    planted: tuple[str, Path], tmp_path: Path
) -> None:
    module, marker = planted
    good = Structure.from_dict(li2o())
    rows = [structure_record("good", "old", good), structure_record("evil", "old", good)]
    evil = li2o()
    evil["sites"][1]["properties"] = {"x": {"@module": module, "@class": "Model"}}
    rows[1][S.STRUCTURE] = json.dumps(evil)
    store = StructureStore(tmp_path / "store")
    sq = SourceQuery(source="old", provider="local")
    store.write_page(sq, 0, pd.DataFrame(rows), S.empty_failures(), None)
    store.finalize()
    loaded = load_source(StoreSource(path=tmp_path / "store"))
    assert list(loaded.records[S.ID]) == ["good"]
    assert list(loaded.failures[S.ID]) == ["evil"]
    assert "stored structure refused" in loaded.failures["reason"].item()
    assert "serialized object" in loaded.failures["reason"].item()
    assert module not in sys.modules and not marker.exists()


# -- sizes -----------------------------------------------------------------------------
def test_a_serialized_tensor_costs_nothing_and_is_refused(tmp_path: Path) -> None:
    """A 1.4 KB line whose site property was a torch tensor dict took ~0.8 GB to decode."""
    d = li2o()
    d["sites"][0]["properties"] = {
        "t": {"@module": "torch", "@class": "Tensor", "dtype": "torch.float64", "data": [0.0]}
    }
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"material_id": "t", "structure": d}) + "\n")
    tracemalloc.start()
    rows = jsonl_rows(path, "test")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert rows[0].record is None and "serialized object" in rows[0].reason
    assert peak < 20e6


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda d: {"x": [list(range(10))] * (MAX_JSON_ITEMS + 1)}, "entries \\(limit"),
        (lambda d: {"x": json.loads("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))},
         "levels deep"),
        (lambda d: {f"k{i}": list(range(100)) for i in range(MAX_JSON_VALUES // 100 + 1)},
         "JSON values"),
    ],
)  # fmt: skip
def test_nested_sizes_are_counted_before_anything_is_built(
    tmp_path: Path, make: object, why: str
) -> None:
    d = li2o()
    d["sites"][0]["properties"] = make(d)  # type: ignore[operator]
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps({"material_id": "ok", "composition": "Li2O"}) + "\n")
    with open(path, "a") as fh:
        fh.write(json.dumps({"material_id": "big", "structure": d}) + "\n")
    rows = jsonl_rows(path, "test")
    assert rows[0].record is not None
    assert rows[1].record is None and "big.jsonl line 2: too large" in rows[1].reason
    assert pd.Series([rows[1].reason]).str.contains(why).all(), rows[1].reason


def test_too_many_sites_are_refused_before_the_sites_are_built(tmp_path: Path) -> None:
    d = li2o()
    d["sites"] = [d["sites"][0]] * (MAX_SITES + 1)
    d["sites"][-1] = "not a site"  # never reached: the count is checked first
    with pytest.raises(ValueError, match=f"{MAX_SITES + 1} sites"):
        structure_from_json(json.dumps(d))


def test_a_line_longer_than_the_limit_is_refused_and_the_next_line_read(tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    long = json.dumps({"material_id": "long", "composition": "Li2O", "x": "y" * MAX_JSON_CHARS})
    path.write_text(long + "\n" + json.dumps({"material_id": "next", "composition": "Li2S"}))
    rows = jsonl_rows(path, "test")
    assert [r.line for r in rows] == [1, 2]
    assert rows[0].record is None and "longer than 5,000,000 characters" in rows[0].reason
    assert rows[1].record is not None and rows[1].record[S.ID] == "next"


def test_an_optimade_entry_keeps_hostile_attributes_as_text_only(
    planted: tuple[str, Path],
) -> None:
    from optimade.adapters.structures.pymatgen import from_pymatgen

    from miscreen.fetch.optimade import entries_to_frames

    module, marker = planted
    attrs = from_pymatgen(Structure.from_dict(li2o())).model_dump(mode="json")
    evil = {"@module": module, "@class": "Model", "x": 1}
    entry = {"type": "structures", "id": "e1", "attributes": {**attrs, "_x_evil": evil}}
    big = json.loads(json.dumps(entry))
    big["id"] = "e2"
    big["attributes"]["_x_big"] = list(range(MAX_JSON_ITEMS + 1))
    records, failures = entries_to_frames([entry, big], "optimade:test", "page 0")
    assert list(records[S.ID]) == ["e1"] and list(failures[S.ID]) == ["e2"]
    assert "entries (limit" in failures["reason"].item()
    assert json.loads(records["properties"].item())["_x_evil"] == evil  # text, never decoded
    assert structure_from_json(records[S.STRUCTURE].item()).composition.reduced_formula == "Li2O"
    assert module not in sys.modules and not marker.exists()


@pytest.mark.parametrize("occu", [0, -0.5, 1.5, float("nan"), float("inf")])
def test_a_json_occupancy_outside_zero_one_is_refused_not_dropped(occu: float) -> None:
    """pymatgen drops a species of occupancy 0 without a word (Li2O would read as O)."""
    data = li2o()
    data["sites"][0]["species"][0]["occu"] = occu
    with pytest.raises(ValueError, match="occupancy"):
        structure_from_json(json.dumps(data))


def test_every_reader_of_stored_or_planned_structures_decodes_as_data(
    planted: tuple[str, Path],
) -> None:
    """The stability estimate's reader and the MD task folders' (prepared and relaxed
    cells, read back by SLURM tasks from a shared run folder) refuse serialized objects."""
    from miscreen.screen.stability import _structure
    from miscreen.verify.md_cell import Prepared
    from miscreen.verify.md_relax import Relaxed

    module, marker = planted
    evil = li2o()
    evil["sites"][0]["properties"] = {"evil": payloads(module)["dataclass"]}
    before = set(sys.modules)
    assert _structure(json.dumps(evil)) is None
    for kind in (Prepared, Relaxed):
        with pytest.raises(ValueError, match="serialized object"):
            kind.from_dict({"structure": evil})
    assert module not in set(sys.modules) - before and not marker.exists()
