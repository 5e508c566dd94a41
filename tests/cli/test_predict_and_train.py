"""``miscreen predict`` keeps the user's data, and ``train``/``predict`` turn every user
mistake into one clear error line before any work (issues 14 and 16)."""

from __future__ import annotations

import csv
import json
import pickle
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from miscreen.cli import app
from tests.fuzz.helpers import small_model_folder

PREDICTION_COLUMNS = [
    "predicted_log10_sigma",
    "lower",
    "upper",
    "uncertainty",
    "domain_distance",
    "out_of_domain",
]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_model_folder(tmp_path_factory.mktemp("models"))


def _run(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def _text(res) -> str:
    """The command's output as one line, without the boxes rich draws around errors."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", res.output).split())


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_predict_keeps_every_row_and_column_in_order(model: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text(
        "id,composition,model,note,reason\n"
        'a,Li6PS5Cl,m1,"x, y",r1\n'
        "a,Li7La3Zr2O12,m2,same id,r2\n"
        "b,NaN,m3,pymatgen reads sodium nitride,r3\n"
        "c,Li0O,m4,,r4\n"
        "d,Li2S ,m5,trailing space kept,r5\n"
        "e,Li3PS4,m6,one field too many,r6,extra\n"
        "f,Li3N,m7,last,r7\n"
    )
    res = _run("predict", "--model", model, "--input", src, "--out", tmp_path / "out.csv")
    assert res.exit_code == 0, res.output
    out = _rows(tmp_path / "out.csv")
    inp = _rows(src)
    assert len(out) == len(inp) == 7  # duplicate ids never cross-join
    for given, got in zip(inp, out, strict=True):
        for col in ("id", "composition", "model", "note", "reason"):
            assert got[col] == given[col]  # input columns unchanged (e)'s 6th field dropped
    assert [r["input_row"] for r in out] == [str(i) for i in range(1, 8)]
    assert list(out[0])[:6] == ["id", "composition", "model", "note", "reason", "input_row"]
    assert "miscreen_model" in out[0] and "miscreen_reason" in out[0]  # clashes prefixed
    predicted = [r["id"] for r in out if r["predicted_log10_sigma"]]
    assert predicted == ["a", "a", "d", "f"]
    for r in out:
        assert bool(r["predicted_log10_sigma"]) != bool(r["miscreen_reason"])
    why = {r["input_row"]: r["miscreen_reason"] for r in out}
    assert "in.csv line 4" in why["3"] and "missing-value marker" in why["3"]
    assert "in.csv line 5" in why["4"] and "amount 0" in why["4"]
    assert "in.csv line 7" in why["6"] and "fields but the header has 5" in why["6"]
    assert all(r["miscreen_model"] in ("", "composition", "cell") for r in out)


def test_predict_jsonl_keeps_bad_lines_in_place_and_writes_parquet(
    model: Path, tmp_path: Path
) -> None:
    src = tmp_path / "in.JSONL"  # capitals: still JSONL
    src.write_text(
        "\n".join(
            [
                json.dumps({"material_id": "x", "composition": "Li2O", "tag": 1}),
                "{broken",
                "[1, 2]",
                json.dumps({"material_id": "x", "composition": "Li3N", "tag": "two"}),
            ]
        )
        + "\n"
    )
    out = tmp_path / "out.parquet"
    res = _run("predict", "--model", model, "--input", src, "--out", out)
    assert res.exit_code == 0, res.output
    table = pd.read_parquet(out)
    assert list(table["input_row"]) == [1, 2, 3, 4]
    assert table["predicted_log10_sigma"].notna().tolist() == [True, False, False, True]
    assert "line 2: not valid JSON" in table.loc[1, "reason"]
    assert "line 3: a JSON list" in table.loc[2, "reason"]
    assert list(table["tag"]) == ["1", None, None, "two"]  # mixed types kept as text


def test_csv_in_capitals_is_read_as_csv(model: Path, tmp_path: Path) -> None:
    src = tmp_path / "IN.CSV"
    src.write_text("composition\nLi2O\n")
    res = _run("predict", "--model", model, "--input", src, "--out", tmp_path / "o.csv")
    assert res.exit_code == 0, res.output
    assert _rows(tmp_path / "o.csv")[0]["predicted_log10_sigma"]


@pytest.mark.parametrize(
    ("out", "extra", "message"),
    [
        ("{input}", [], "writing it would destroy the input"),
        ("{alias}", [], "writing it would destroy the input"),
        ("p.txt", [], "must end in .csv or .parquet"),
        ("p.csv", ["--interval", "1.5"], "not in (0, 1)"),
    ],
)
def test_predict_refuses_bad_options_before_any_work(
    tmp_path: Path, out: str, extra: list[str], message: str
) -> None:
    src = tmp_path / "sub" / "in.csv"
    src.parent.mkdir()
    src.write_text("composition\nLi2O\n")
    before = src.read_bytes()
    target = out.format(input=src, alias=tmp_path / "sub" / ".." / "sub" / "in.csv")
    if not target.startswith("/"):
        target = str(tmp_path / target)
    # the model folder does not exist: the option is refused before it is even looked at
    res = _run("predict", "--model", tmp_path / "none", "--input", src, "--out", target, *extra)
    assert res.exit_code == 2, res.output
    assert message in _text(res)
    assert src.read_bytes() == before
    if Path(target).resolve() != src.resolve():
        assert not Path(target).exists()


def test_errors_are_one_line_and_tracebacks_only_with_verbose(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("composition\nLi2O\n")
    args = ["predict", "--model", tmp_path, "--input", src, "--out", tmp_path / "o.csv"]
    res = _run(*args)
    assert res.exit_code == 1
    assert "error:" in res.output and "holds no trained models" in res.output
    assert "Traceback" not in res.output
    verbose = _run("--verbose", *args)
    assert verbose.exit_code != 0 and type(verbose.exception).__name__ == "ModelLoadError"


def test_a_pickle_payload_in_a_model_folder_never_runs_on_predict(
    model: Path, tmp_path: Path
) -> None:
    class Payload:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "pwned",))

    folder = Path(shutil.copytree(model, tmp_path / "m"))
    routing = json.loads((folder / "routing.json").read_text())
    for name in {r["model"] for r in routing.values()}:
        from miscreen import atomic_io
        from miscreen.catalog import ModelFolder

        mf = ModelFolder(folder / name)
        mf.estimator.write_bytes(pickle.dumps(Payload()))
        meta = json.loads(mf.meta.read_text())
        meta["model_sha256"] = atomic_io.sha256_file(mf.estimator)
        mf.meta.write_text(json.dumps(meta))
    src = tmp_path / "in.csv"
    src.write_text("composition\nLi2O\n")
    res = _run("predict", "--model", folder, "--input", src, "--out", tmp_path / "o.csv")
    assert res.exit_code == 1 and "never unpickled" in res.output
    assert not (tmp_path / "pwned").exists()


# -- train --data ---------------------------------------------------------------------------
def _training_csv(path: Path, extra: str = "") -> Path:
    rows = ["id,composition,sigma,structure"]
    for n in range(1, 6):
        for m in range(1, 4):
            rows.append(f"s{n}-{m},Li{n}P{m}S{n + 2},{10 ** (-3 - 0.3 * n - 0.2 * m):.3g},")
    path.write_text("\n".join(rows) + "\n" + extra)
    return path


def test_train_data_with_duplicate_ids_and_bad_rows_trains_on_the_good_rows(
    tmp_path: Path,
) -> None:
    from pymatgen.core import Lattice, Structure
    from pymatgen.io.cif import CifWriter

    huge = Structure(Lattice.cubic(1e6), ["Li", "O"], [[0, 0, 0], [0.5] * 3])
    (tmp_path / "huge.cif").write_text(str(CifWriter(huge)))
    data = _training_csv(
        tmp_path / "t.csv",
        "s1-1,Li9PS4,1e-4,\ns1-1,Li9P2S4,2e-4,\nbad1,Li2S,nan,\nbad2,Li2S,inf,\n"
        "bad3,Li2S,1e400,\nbad4,Li2S,1e308,\nbad5,Li1e308O,1e-4,\nbad6,Li1e309O,1e-4,\n"
        "bad7,Li2O,1e-4,huge.cif\n",
    )
    out = tmp_path / "models" / "mine"
    res = _run("train", "--data", data, "--out", out, "--target", "sigma", "--preset", "cell")
    assert res.exit_code == 0, res.output
    text = _text(res)
    for n, line in zip(range(1, 8), range(19, 26), strict=True):
        assert f"skipped bad{n}: " in text and f"t.csv line {line}" in text
    assert "physical range" in text and "per site, outside" in text
    assert "composition model: 17 rows" in text  # 15 + the two repeated ids
    assert (out / "routing.json").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "."], "is the current folder"),
        (["--out", "{tmp}", "--preset", "nonsense"], "choose one of"),
        (["--out", "{tmp}/models/x y"], "may hold only letters"),
        (["--out", "{tmp}/notmodels"], "not a miscreen model folder"),
    ],
)
def test_train_data_refuses_bad_output_folders_and_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    data = _training_csv(tmp_path / "t.csv")
    (tmp_path / "notmodels").mkdir()
    (tmp_path / "notmodels" / "thesis.tex").write_text("precious")
    args = [a.format(tmp=tmp_path) for a in args]
    res = _run("train", "--data", data, "--target", "sigma", *args)
    assert res.exit_code == 2, res.output
    assert message in _text(res)
    assert (tmp_path / "notmodels" / "thesis.tex").read_text() == "precious"
    assert data.is_file()


def test_train_data_on_an_empty_csv_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_text("")
    res = _run("train", "--data", tmp_path / "e.csv", "--out", tmp_path / "m")
    assert res.exit_code == 1 and "e.csv is empty" in res.output
    assert "Traceback" not in res.output


def test_predict_says_which_formula_each_prediction_was_made_for(
    model: Path, tmp_path: Path
) -> None:
    """The CIF's formula where a structure was used, the composition's otherwise."""
    from pymatgen.core import Lattice, Structure
    from pymatgen.io.cif import CifWriter

    li2o = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.61), ["Li", "O"],
                                     [[0.25, 0.25, 0.25], [0, 0, 0]])  # fmt: skip
    (tmp_path / "li2o.cif").write_text(str(CifWriter(li2o)))
    src = tmp_path / "in.csv"
    src.write_text(
        "id,composition,structure,formula\n"
        "cif,,li2o.cif,mine\n"
        "comp,Li6P2S10Cl2,,mine\n"
        "both,Li3PO4,li2o.cif,mine\n"
        "bad,Xx2,,mine\n"
    )
    res = _run("predict", "--model", model, "--input", src, "--out", tmp_path / "o.csv")
    assert res.exit_code == 0, res.output
    out = {r["id"]: r for r in _rows(tmp_path / "o.csv")}
    assert out["cif"]["formula"] == "mine"  # the input's column is kept as given
    assert out["cif"]["miscreen_formula"] == "Li2O" and out["cif"]["predicted_log10_sigma"]
    assert out["comp"]["miscreen_formula"] == "Li3PS5Cl"
    assert out["bad"]["miscreen_formula"] == "" and out["bad"]["reason"]
    # composition and CIF disagree: predicted for the CIF's formula, or refused with a reason
    assert out["both"]["miscreen_formula"] in ("Li2O", "") or out["both"]["reason"]
    if out["both"]["predicted_log10_sigma"]:
        assert out["both"]["miscreen_formula"] == "Li2O"


def test_a_second_train_into_the_same_folder_says_another_one_is_writing(
    tmp_path: Path,
) -> None:
    import fcntl
    import os

    data = _training_csv(tmp_path / "t.csv")
    out = tmp_path / "models" / "mine"
    out.parent.mkdir()
    fd = os.open(out.with_name(".mine.lock"), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a first `train --out` still running
        res = _run("train", "--data", data, "--out", out, "--target", "sigma", "--preset", "cell")
    finally:
        os.close(fd)
    assert res.exit_code == 1, res.output
    assert "another miscreen process is writing models to" in _text(res)
    assert not out.exists()
