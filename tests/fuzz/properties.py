"""Generators of hostile input and the properties every parser of user input must keep:
no crash, the good rows finish, every bad row has a reason naming its line.

Shared by the fuzz tests (a few hundred examples) and ``benchmarks/fuzz.py`` (>= 10,000).
Each ``check_*`` function takes one generated example and raises ``AssertionError`` when
the property fails; any other exception is a crash.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import tarfile
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from tests.fuzz.helpers import GOOD_FORMULAS

ELEMENTS = ("Li", "O", "S", "P", "La", "Zr", "Ge", "Cl", "Br", "N", "Ti", "Al", "Si", "Na")
ODD_SYMBOLS = ("Xx", "Q", "D", "T", "NaN", "nan", "Inf", "E", "A", "Uuo", "li", "LI", "Og")
NUMBERS = (
    "", "1", "2", "0.5", "12", "0", "0.0", "1e308", "1e309", "1e-300", "1e400", "-1", "nan",
    "inf", ".", "*", "1e", "0.000001", "10000", "99999", "1_0", "٣", "²",
)  # fmt: skip
JUNK = ("(", ")", "[", "]", " ", "-", "+", "·", ".", "*", ",", "'", '"', "\t", "\\", "#", "é")
BAD_TARGETS = ("nan", "inf", "-inf", "1e400", "1e308", "2e3", "abc", "", "<", "<0", "-1", "0")
GOOD_SIGMAS = ("1e-3", "2.5e-4", "<1E-10", "0.012", "1e-8", "3E-05")
HOSTILE_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30
)


# -- compositions ---------------------------------------------------------------------------
@st.composite
def good_formulas(draw: st.DrawFn) -> str:
    """Formulas any chemist might write: real ones, or 1-4 elements with sane amounts."""
    if draw(st.booleans()):
        return draw(st.sampled_from(GOOD_FORMULAS))
    parts = draw(st.lists(st.sampled_from(ELEMENTS), min_size=1, max_size=4, unique=True))
    amounts = st.one_of(
        st.just(""),
        st.integers(1, 24).map(str),
        st.floats(0.01, 50, allow_nan=False).map(lambda x: f"{x:.3g}"),
    )
    formula = "".join(p + draw(amounts) for p in parts)
    return "LiNa" if formula.lower() in ("nan", "none", "inf") else formula


@st.composite
def hostile_formulas(draw: st.DrawFn) -> str:
    """Anything: element-like tokens, absurd numbers, brackets, junk and unicode."""
    pieces = st.one_of(
        st.sampled_from(ELEMENTS + ODD_SYMBOLS),
        st.sampled_from(NUMBERS),
        st.sampled_from(JUNK),
        HOSTILE_TEXT,
    )
    return "".join(draw(st.lists(pieces, max_size=10)))


formulas = st.one_of(
    good_formulas().map(lambda f: (f, True)), hostile_formulas().map(lambda f: (f, False))
)


def check_formula(example: tuple[str, bool]) -> None:
    """A formula parses to finite, sane amounts with every written element kept, or is
    refused with a ``ValueError``; a good one always parses."""
    from miscreen.fetch.parsing import MAX_AMOUNT, MIN_AMOUNT, parse_composition

    formula, good = example
    try:
        comp = parse_composition(formula)
    except ValueError as exc:
        assert not good, f"good formula {formula!r} refused: {exc}"
        assert str(exc), "a refusal without a reason"
        return
    amounts = list(comp.values())
    assert amounts and all(math.isfinite(a) and MIN_AMOUNT <= a <= MAX_AMOUNT for a in amounts)
    read = {el.symbol for el in comp.elements}
    for token in re.findall(r"[A-Z][a-z]*", formula):
        token = {"D": "H", "T": "H"}.get(token, token)
        from pymatgen.core import Element

        if Element.is_valid_symbol(token):
            assert token in read, f"{formula!r}: {token} written but read as {comp.formula}"
    assert formula.strip().lower() not in ("nan", "none", "inf")


# -- CSV rows -------------------------------------------------------------------------------
ROW_KINDS = ("good", "good", "good", "bad_formula", "bad_target", "extra_field", "blank", "dup")


@dataclass
class CsvExample:
    text: str
    expected: list[tuple[int, bool]]  # (start line, good) per data row, in order
    labelled: bool


@st.composite
def csv_files(draw: st.DrawFn, labelled: bool | None = None) -> CsvExample:
    """A CSV with extra columns of hostile text, good rows and bad rows in any order."""
    labelled = draw(st.booleans()) if labelled is None else labelled
    header = ["id", "composition"] + (["sigma"] if labelled else []) + ["note"]
    buf = io.StringIO()
    writer = csv.writer(buf)  # "\r\n": fields holding \r or \n get quoted
    writer.writerow(header)
    expected: list[tuple[int, bool]] = []
    ids: list[str] = []
    for n in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(ROW_KINDS))
        start = len(io.StringIO(buf.getvalue(), newline="").readlines()) + 1
        if kind == "blank":
            buf.write("\r\n")
            continue
        rid = draw(st.sampled_from(ids)) if kind == "dup" and ids else f"r{n}"
        ids.append(rid)
        formula = draw(good_formulas())
        good = True
        if kind == "bad_formula":
            formula = draw(st.sampled_from(("NaN", "Li0O", "Li1e309O", "Li1e308O", "Xx2", "")))
            good = False
        target = draw(st.sampled_from(GOOD_SIGMAS))
        if kind == "bad_target":
            target = draw(st.sampled_from(BAD_TARGETS))
            good = not labelled
        row = [rid, formula] + ([target] if labelled else []) + [draw(HOSTILE_TEXT)]
        if kind == "extra_field":
            row.append(draw(HOSTILE_TEXT))
            good = False
        writer.writerow(row)
        expected.append((start, good))
    return CsvExample(buf.getvalue(), expected, labelled)


def check_csv(example: CsvExample, folder: Path) -> None:
    """Every data row comes back in order: good rows with a record, bad rows with a reason
    naming their line; ids are unique."""
    from miscreen.fetch.csv_files import csv_rows

    path = folder / "in.csv"
    path.write_text(example.text, encoding="utf-8")
    _, rows = csv_rows(path, "fuzz", "sigma" if example.labelled else None)
    assert [r.line for r in rows] == [line for line, _ in example.expected]
    for row, (line, good) in zip(rows, example.expected, strict=True):
        if good:
            assert row.record is not None, f"good row at line {line} refused: {row.reason}"
        else:
            assert row.record is None and row.reason, f"bad row at line {line} accepted"
            assert f"line {line}" in row.reason, row.reason
    record_ids = [r.record["id"] for r in rows if r.record is not None]
    assert len(set(record_ids)) == len(record_ids)


def check_predict(example: CsvExample, folder: Path, model: Path) -> None:
    """``miscreen predict``'s table: the input's rows in order with their columns as given,
    a prediction for every good row and a reason for every other."""
    import pandas as pd

    from miscreen.featurize import FeatureOptions
    from miscreen.fetch.local import read_input_rows
    from miscreen.pipeline.prediction import input_records, prediction_table
    from miscreen.screen.predict import predict_records

    path = folder / "in.csv"
    path.write_text(example.text, encoding="utf-8")
    columns, rows = read_input_rows(path)
    records = input_records(rows)
    predicted = failures = None
    if not records.empty:
        options = FeatureOptions(jobs=1, cache_dir=folder / "cache", time_limit=30)
        predicted, failures = predict_records(_models(model), records, 0.8, options)
    table = prediction_table(columns, rows, predicted, failures)
    given = list(csv.reader(io.StringIO(example.text)))
    given = [g for g in given[1:] if any(f.strip() for f in g)]
    assert len(table) == len(rows) == len(given)
    assert list(table["input_row"]) == list(range(1, len(rows) + 1))
    for (_, t), g, (line, good) in zip(table.iterrows(), given, example.expected, strict=True):
        if len(g) <= len(columns):
            assert [t[c] for c in columns] == g + [""] * (len(columns) - len(g))
        if good:
            assert math.isfinite(t["predicted_log10_sigma"]), t["reason"]
            assert pd.isna(t["reason"])
        else:
            assert isinstance(t["reason"], str) and f"line {line}" in t["reason"]


@cache
def _models(model: Path):
    from miscreen.catalog import ModelCatalog
    from miscreen.train.routing import load_models

    return load_models(ModelCatalog(model))


# -- JSONL rows ---------------------------------------------------------------------------
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), HOSTILE_TEXT),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(HOSTILE_TEXT, inner, max_size=4)
    ),
    max_leaves=12,
)


@cache
def _li2o_dict() -> dict:
    from pymatgen.core import Lattice, Structure

    s = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.61), ["Li", "O"], [[0.25] * 3, [0] * 3])
    return s.as_dict()


@st.composite
def bad_structure_dicts(draw: st.DrawFn) -> dict:
    d = json.loads(json.dumps(_li2o_dict()))
    how = draw(st.sampled_from(("lattice", "occu", "overlap", "coords", "junk", "drop")))
    if how == "lattice":
        value = draw(st.sampled_from((0.0, -4.0, 1e6, 1e9, 1e-3)))
        d["lattice"]["matrix"][0][0] = value
        d["lattice"].pop("a", None)
    elif how == "occu":
        d["sites"][0]["species"][0]["occu"] = draw(st.sampled_from((2, 1.5, -1, 0)))
    elif how == "overlap":
        d["sites"].append(json.loads(json.dumps(d["sites"][0])))
    elif how == "coords":
        d["sites"][0]["abc"] = [draw(st.sampled_from((1e300, -1e300, 0.5))), 0, 0]
    elif how == "junk":
        d["sites"][0] = draw(JSON_VALUES)
    else:
        d.pop(draw(st.sampled_from(("lattice", "sites"))))
    return d


@dataclass
class JsonlExample:
    text: str
    expected: list[tuple[int, bool | None]]  # (line, good); None: may go either way


@st.composite
def jsonl_files(draw: st.DrawFn) -> JsonlExample:
    lines: list[str] = []
    expected: list[tuple[int, bool | None]] = []
    for n in range(draw(st.integers(0, 8))):
        kind = draw(
            st.sampled_from(("comp", "structure", "malformed", "not_object", "bad_structure",
                             "junk_object", "blank", "dup"))
        )  # fmt: skip
        rid = "same" if kind == "dup" else f"m{n}"
        good: bool | None = True
        if kind in ("comp", "dup"):
            line = json.dumps({"material_id": rid, "composition": draw(good_formulas())})
        elif kind == "structure":
            line = json.dumps({"material_id": rid, "structure": _li2o_dict(), "x": 1})
        elif kind == "malformed":
            good = False
            text = json.dumps({"material_id": rid, "composition": "Li2O"})
            line = text[: draw(st.integers(1, len(text) - 1))]
        elif kind == "not_object":
            good = False
            line = json.dumps(draw(st.one_of(st.lists(JSON_VALUES), st.integers(), st.none())))
        elif kind == "bad_structure":
            good = None  # some mutations (e.g. a smaller cell) are still a structure
            line = json.dumps({"material_id": rid, "structure": draw(bad_structure_dicts())})
        elif kind == "junk_object":
            good = None
            line = json.dumps(draw(st.dictionaries(HOSTILE_TEXT, JSON_VALUES, max_size=4)))
        else:
            lines.append("   ")
            continue
        lines.append(line)
        expected.append((len(lines), good))
    return JsonlExample("\n".join(lines) + "\n", expected)


def check_jsonl(example: JsonlExample, folder: Path) -> None:
    from miscreen.fetch.jsonl_files import jsonl_rows

    path = folder / "in.jsonl"
    path.write_text(example.text, encoding="utf-8")
    rows = jsonl_rows(path, "fuzz")
    assert [r.line for r in rows] == [line for line, _ in example.expected]
    for row, (line, good) in zip(rows, example.expected, strict=True):
        assert (row.record is None) != (row.reason is None)
        if good is True:
            assert row.record is not None, f"good line {line} refused: {row.reason}"
        if good is False:
            assert row.record is None and f"line {line}" in str(row.reason)
        if row.reason is not None:
            assert f"line {line}" in row.reason
    ids = [r.record["id"] for r in rows if r.record is not None]
    assert len(set(ids)) == len(ids)


# -- hostile structure dicts ------------------------------------------------------------------
# modules no input may make us import ("this" prints the Zen, "__hello__" a greeting)
HOSTILE_MODULES = ("this", "__hello__", "json.tool", "tests.fuzz.tripwire")
NAMED_CLASSES = ("s", "Trap", "Structure", "Species", "Lattice", "", "x.y")
NAMED_CALLABLES = ("fire", "system", "Trap", "s")
PLACES = ("site_properties", "structure_properties", "top", "lattice", "site", "species",
          "element", "sites")  # fmt: skip
MARKS = ("@module", "@class", "@callable", "@bound")


@st.composite
def serialized_objects(draw: st.DrawFn) -> dict:
    """A dict shaped like a serialized object: ``@module`` with ``@class`` or
    ``@callable`` (or both, or ``@bound``), naming a hostile module or pymatgen's own."""
    module = draw(
        st.one_of(
            st.sampled_from(HOSTILE_MODULES),
            st.sampled_from(HOSTILE_MODULES),
            st.sampled_from(("pymatgen.core.structure", "pymatgen.core.periodic_table", "os")),
            st.one_of(st.none(), st.integers(), HOSTILE_TEXT),
        )
    )
    obj: dict[str, Any] = {"@module": module}
    for mark in draw(st.sampled_from((("@class",), ("@callable",), ("@class", "@callable"),
                                      ("@callable", "@bound"), ()))):  # fmt: skip
        names = NAMED_CLASSES if mark == "@class" else NAMED_CALLABLES
        obj[mark] = draw(st.sampled_from(names)) if mark != "@bound" else draw(JSON_VALUES)
    obj.update(draw(st.dictionaries(HOSTILE_TEXT, JSON_VALUES, max_size=3)))
    return obj


HOSTILE_PROPERTIES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), HOSTILE_TEXT,
              serialized_objects()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(HOSTILE_TEXT, st.sampled_from(MARKS)), inner, max_size=4),
    ),
    max_leaves=10,
)  # fmt: skip


def _has_mark(value: Any) -> bool:
    if isinstance(value, dict):
        return any(k in value for k in MARKS) or any(_has_mark(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_mark(v) for v in value)
    return False


@st.composite
def hostile_structure_lines(draw: st.DrawFn) -> tuple[dict, bool | None]:
    """A good structure dict with a hostile value put somewhere -> (dict, expected good):
    a property holding a serialized object must be refused; plain data in a property must
    load; anywhere else either way, as long as nothing is imported."""
    d = json.loads(json.dumps(_li2o_dict()))
    place = draw(st.sampled_from(PLACES))
    value = draw(
        st.one_of(serialized_objects(), st.lists(serialized_objects(), max_size=2),
                  HOSTILE_PROPERTIES)
    )  # fmt: skip
    good: bool | None = None
    if place == "site_properties":
        d["sites"][draw(st.integers(0, len(d["sites"]) - 1))]["properties"] = {"p": value}
        good = not _has_mark(value)
    elif place == "structure_properties":
        d["properties"] = {"p": value}
        good = not _has_mark(value)
    elif place in ("top", "lattice", "site", "species"):
        target = {"top": d, "lattice": d["lattice"], "site": d["sites"][0],
                  "species": d["sites"][0]["species"][0]}[place]  # fmt: skip
        target.update(draw(serialized_objects()))
    elif place == "element":
        d["sites"][0]["species"][0]["element"] = value
    else:
        d["sites"] = draw(st.lists(st.one_of(st.just(d["sites"][0]), HOSTILE_PROPERTIES),
                                   max_size=4))  # fmt: skip
    return d, good


@st.composite
def hostile_jsonl_files(draw: st.DrawFn) -> JsonlExample:
    """JSONL files of good lines and structure dicts carrying hostile objects."""
    lines: list[str] = []
    expected: list[tuple[int, bool | None]] = []
    for n in range(draw(st.integers(1, 6))):
        if draw(st.booleans()):
            line, good = {"material_id": f"m{n}", "structure": _li2o_dict()}, True
        else:
            d, good = draw(hostile_structure_lines())
            line = {"material_id": f"m{n}", "structure": d}
        lines.append(json.dumps(line))
        expected.append((len(lines), good))
    return JsonlExample("\n".join(lines) + "\n", expected)


IMPORTED_FROM_INPUT: set[str] = set()  # every hostile module found imported, for the benchmark


def check_hostile_jsonl(example: JsonlExample, folder: Path) -> None:
    """:func:`check_jsonl`, and no module named in the input was imported (``sys.modules``
    before and after, the hostile modules removed first so that a second import shows);
    every structure that loaded reads back through the store's decoder."""
    import sys

    from miscreen.fetch.jsonl_files import jsonl_rows
    from miscreen.fetch.parsing import structure_from_json

    for name in HOSTILE_MODULES:
        sys.modules.pop(name, None)
    before = set(sys.modules)
    try:
        check_jsonl(example, folder)
    finally:
        imported = set(HOSTILE_MODULES) & (set(sys.modules) - before)
        IMPORTED_FROM_INPUT.update(imported)
    assert not imported, f"modules imported from input: {sorted(imported)}"
    for row in jsonl_rows(folder / "in.jsonl", "fuzz"):
        if row.record is not None:
            structure_from_json(row.record["structure"])


# -- CIF mutations ----------------------------------------------------------------------------
@cache
def base_cifs() -> tuple[str, ...]:
    """Small real CIFs: two from OBELiX (one ordered, one disordered) and Li2O from pymatgen."""
    import os

    from pymatgen.core import Structure
    from pymatgen.io.cif import CifWriter

    shared = Path(os.environ.get("MISCREEN_MIRROR", Path(__file__).parents[3] / "shared" / "data"))
    texts = []
    with tarfile.open(shared / "obelix" / "all_cifs.tar.gz") as tar:
        for name in ("gvd", "hx7"):
            fh = tar.extractfile(f"all_randomized_cifs/{name}.cif")
            assert fh is not None
            texts.append(fh.read().decode())
    texts.append(str(CifWriter(Structure.from_dict(_li2o_dict()))))
    return tuple(texts)


ATOM_LINE = re.compile(r"^\s+[A-Z][a-z]?\S*\s+\S+\s+\d+\s+\S+\s+\S+\s+\S+\s+\S+\s*$")
CELL_VALUES = ("0", "-4", "1e4", "1e6", "1e9", "nan", "inf", "0.001", "1e300", "3")
ANGLE_VALUES = ("0", "180", "1", "179.9", "nan", "90", "360")
OCCUPANCIES = ("2", "1.5", "0.6", "0", "-1", "nan", "1e300")


@st.composite
def cif_mutations(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A real CIF with 1-3 mutations; -> (text, what was done)."""
    text = draw(st.sampled_from(base_cifs()))
    done = []
    for _ in range(draw(st.integers(1, 3))):
        how = draw(
            st.sampled_from(("truncate", "flip", "cell", "angle", "overlap", "occupancy",
                             "delete", "insert", "many"))
        )  # fmt: skip
        lines = text.splitlines()
        atoms = [i for i, ln in enumerate(lines) if ATOM_LINE.match(ln)]
        if how == "truncate":
            text = text[: draw(st.integers(0, max(len(text) - 1, 0)))]
        elif how == "flip":
            data = bytearray(text.encode())
            for _ in range(draw(st.integers(1, 5))):
                if data:
                    data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
            text = data.decode("utf-8", errors="replace")
        elif how == "cell":
            axis, value = draw(st.sampled_from("abc")), draw(st.sampled_from(CELL_VALUES))
            text = re.sub(rf"(_cell_length_{axis}\s+)\S+", rf"\g<1>{value}", text)
        elif how == "angle":
            axis = draw(st.sampled_from(("alpha", "beta", "gamma")))
            value = draw(st.sampled_from(ANGLE_VALUES))
            text = re.sub(rf"(_cell_angle_{axis}\s+)\S+", rf"\g<1>{value}", text)
        elif how == "overlap" and atoms:
            i = draw(st.sampled_from(atoms))
            lines.insert(i + 1, lines[i])
            text = "\n".join(lines) + "\n"
        elif how == "occupancy" and atoms:
            i = draw(st.sampled_from(atoms))
            parts = lines[i].split()
            parts[-1] = draw(st.sampled_from(OCCUPANCIES))
            lines[i] = "  " + "  ".join(parts)
            text = "\n".join(lines) + "\n"
        elif how == "delete" and lines:
            del lines[draw(st.integers(0, len(lines) - 1))]
            text = "\n".join(lines) + "\n"
        elif how == "insert":
            lines.insert(draw(st.integers(0, len(lines))), draw(HOSTILE_TEXT))
            text = "\n".join(lines) + "\n"
        elif how == "many" and atoms:
            template = lines[atoms[0]].split()
            extra = []
            for k in range(draw(st.sampled_from((50, 500, 2500)))):
                x, y, z = (k % 13) / 13, (k // 13 % 13) / 13, (k // 169) / 17
                extra.append("  " + "  ".join([*template[:3], f"{x:.4f}", f"{y:.4f}",
                                                f"{z:.4f}", "1"]))  # fmt: skip
            lines[atoms[-1] + 1 : atoms[-1] + 1] = extra
            text = "\n".join(lines) + "\n"
        done.append(how)
    return text, done


def check_cif(example: tuple[str, list[str]], folder: Path, featurize: bool = True) -> None:
    """A mutated CIF beside a good one: the good one always loads (and featurizes); the
    mutant loads as a sane structure or is a failure with a reason; featurizing what loaded
    either gives features or a failure with a reason."""
    from miscreen.featurize import FeatureOptions, featurize_records
    from miscreen.fetch.cif_files import load_cif_dir
    from miscreen.fetch.parsing import check_structure, structure_from_json

    text, _ = example
    cifs = folder / "cifs"
    cifs.mkdir(exist_ok=True)
    for old in cifs.iterdir():
        old.unlink()
    (cifs / "good.cif").write_text(base_cifs()[0])
    (cifs / "mutant.cif").write_text(text, encoding="utf-8", errors="surrogatepass")
    records, failures = load_cif_dir(cifs)
    assert "good" in set(records["id"])
    assert sorted([*records["id"], *failures["id"]]) == ["good", "mutant"]
    assert failures["reason"].map(lambda r: isinstance(r, str) and len(r) > 0).all()
    for js in records["structure"]:
        check_structure(structure_from_json(js))
    if featurize:
        options = FeatureOptions(jobs=1, cache_dir=folder / "cache", time_limit=30)
        feats, fails, _ = featurize_records(records, "structure", options)
        assert "good" in set(feats.index)
        assert sorted([*feats.index, *fails["id"]]) == sorted(records["id"])
        assert fails["reason"].map(lambda r: isinstance(r, str) and len(r) > 0).all()


# -- config documents -----------------------------------------------------------------------
CONFIG_KEYS = {
    "run_name": st.one_of(HOSTILE_TEXT, st.sampled_from(("..", ".", "ok", "a/b", "x" * 200))),
    "seed": st.one_of(st.integers(), st.floats(), HOSTILE_TEXT),
    "features": st.fixed_dictionaries(
        {},
        optional={
            "preset": st.sampled_from(("composition", "cell", "full", "nope", "")),
            "jobs": st.one_of(st.integers(-3, 64), st.none(), HOSTILE_TEXT),
            "time_limit_s": st.one_of(st.floats(), st.integers()),
        },
    ),
    "model": st.fixed_dictionaries(
        {},
        optional={
            "kind": st.sampled_from(("extra_trees", "ensemble", "svm")),
            "n_estimators": st.one_of(st.integers(), HOSTILE_TEXT),
            "hyperparameters": st.dictionaries(HOSTILE_TEXT, JSON_VALUES, max_size=3),
            "interval": st.floats(),
        },
    ),
    "screen": st.fixed_dictionaries(
        {},
        optional={
            "top_k": st.integers(),
            "require_elements": st.lists(HOSTILE_TEXT, max_size=4),
            "score": st.sampled_from(("mean", "lower", "best")),
        },
    ),
    "batch": st.fixed_dictionaries(
        {}, optional={"dask": st.fixed_dictionaries({}, optional={"jobqueue": JSON_VALUES})}
    ),
    "candidates": st.lists(
        st.fixed_dictionaries(
            {"kind": st.sampled_from(("obelix", "csv", "jsonl", "nope"))},
            optional={"path": HOSTILE_TEXT, "split": st.sampled_from(("test", "x"))},
        ),
        max_size=3,
    ),
    "unknown_key": JSON_VALUES,
}


@st.composite
def config_documents(draw: st.DrawFn) -> str:
    """A YAML config: random keys and values, sometimes aliases, bombs or deep nesting."""
    import yaml

    keys = draw(st.lists(st.sampled_from(sorted(CONFIG_KEYS)), unique=True, max_size=6))
    doc = {k: draw(CONFIG_KEYS[k]) for k in keys}
    try:
        text = yaml.safe_dump(doc, allow_unicode=True)
    except (yaml.YAMLError, ValueError, UnicodeError):
        text = "run_name: x\n"
    extra = draw(st.sampled_from(("none", "none", "alias", "bomb", "deep", "recursive", "junk")))
    if extra == "alias":
        text += "screen:\n  require_elements: &e [Li, S]\ndata:\n  exclude_families: *e\n"
    elif extra == "bomb":
        width, levels = draw(st.integers(2, 12)), draw(st.integers(2, 10))
        bomb = ["  l0: &a0 [" + ", ".join(["lol"] * width) + "]"]
        bomb += [
            f"  l{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)
        ]
        text = "batch:\n  dask:\n    jobqueue:\n" + "\n".join("    " + b for b in bomb) + "\n"
    elif extra == "deep":
        depth = draw(st.sampled_from((40, 60, 500, 5000)))
        text = "seed: " + "[" * depth + "]" * depth + "\n"
    elif extra == "recursive":
        text = "batch:\n  dask:\n    jobqueue: &r {a: *r}\n"
    elif extra == "junk":
        text = draw(HOSTILE_TEXT) + text
    return text


def check_config(text: str, folder: Path) -> None:
    """A config loads or is refused with a ``ConfigError`` of bounded length, quickly."""
    import time

    from miscreen.config import Config, ConfigError, load_config

    path = folder / "c.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    start = time.perf_counter()
    try:
        cfg = load_config(path)
        assert isinstance(cfg, Config)
        assert "/" not in cfg.run_name and set(cfg.run_name) - {"."}
    except ConfigError as exc:
        assert 0 < len(str(exc)) < 10_000
    assert time.perf_counter() - start < 10, "config took more than 10 s"


def scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="miscreen-fuzz-"))


def describe(example: Any) -> str:
    """A short description of an example for a crash report."""
    text = repr(example)
    return text if len(text) <= 300 else text[:297] + "..."
