"""Property-based tests of every parser of user input (issue 16): generated compositions,
CSV and JSONL rows, CIF mutations and config documents. The property: no crash, the good
rows finish (and are predicted), every bad row has a reason naming its line, memory stays
bounded. A few hundred examples here; ``benchmarks/fuzz.py`` runs ten thousand and more."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz import properties as P
from tests.fuzz.helpers import small_model_folder

FAST = settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
MEMORY_LIMIT_MB = 1024  # growth of the peak RSS over the whole module


@pytest.fixture(scope="module", autouse=True)
def bounded_memory():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    yield
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert after - before < MEMORY_LIMIT_MB, f"peak RSS grew by {after - before:.0f} MB"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_model_folder(tmp_path_factory.mktemp("models"))


@settings(FAST, max_examples=150)
@given(P.formulas)
def test_compositions(example: tuple[str, bool]) -> None:
    P.check_formula(example)


def test_csv_rows(folder: Path) -> None:
    @settings(FAST)
    @given(P.csv_files())
    def run(example: P.CsvExample) -> None:
        P.check_csv(example, folder)

    run()


def test_csv_rows_are_predicted_in_place(folder: Path, model: Path) -> None:
    @settings(FAST, max_examples=15)
    @given(P.csv_files(labelled=False))
    def run(example: P.CsvExample) -> None:
        P.check_predict(example, folder, model)

    run()


def test_jsonl_rows(folder: Path) -> None:
    @settings(FAST)
    @given(P.jsonl_files())
    def run(example: P.JsonlExample) -> None:
        P.check_jsonl(example, folder)

    run()


def test_cif_mutations(folder: Path) -> None:
    @settings(FAST, max_examples=25)
    @given(P.cif_mutations())
    def run(example: tuple[str, list[str]]) -> None:
        P.check_cif(example, folder)

    run()


def test_config_documents(folder: Path) -> None:
    @settings(FAST)
    @given(P.config_documents())
    def run(text: str) -> None:
        P.check_config(text, folder)

    run()


def test_hostile_structure_dicts(folder: Path) -> None:
    """Structure dicts with hostile ``@module``/``@class`` values and site properties: no
    module named in the input is imported (``sys.modules`` before and after), a property
    holding a serialized object is refused with a reason, plain properties load."""

    @settings(FAST, max_examples=80)
    @given(P.hostile_jsonl_files())
    def run(example: P.JsonlExample) -> None:
        P.check_hostile_jsonl(example, folder)

    run()
