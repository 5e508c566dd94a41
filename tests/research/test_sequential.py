"""benchmarks/sequential.py: the halves it chooses and checks on, and the functions it runs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.research import import_benchmark

sequential = import_benchmark("sequential")


def test_the_halves_are_disjoint_fixed_and_cover_every_row() -> None:
    a, b = sequential.half_rows(599, "A"), sequential.half_rows(599, "B")
    assert not set(a) & set(b) and sorted({*a, *b}) == list(range(599))
    assert np.array_equal(a, sequential.half_rows(599, "A"))
    assert np.array_equal(sequential.half_rows(7, "all"), np.arange(7))


def test_every_learned_function_gets_the_prior_and_the_references_run_without() -> None:
    plan = sequential.functions("physics", None)
    assert ("mli", "mli", "weighted") in plan and ("random", "random", "none") in plan
    assert ("mli_cold_start_only", "mli", "cold_start") in plan  # the method before the weighting
    assert ("mli_no_prior", "mli", "none") in plan and ("mei_no_prior", "mei", "none") in plan
    assert all(use == "none" for name, _, use in sequential.functions("none", None))
    only = sequential.functions("physics", ["mli", "mei_no_prior"])
    assert [name for name, _, _ in only] == ["mli", "random", "mei_no_prior"]


def test_a_structure_without_a_3d_path_gets_the_highest_barrier(tmp_path, monkeypatch) -> None:
    cache = tmp_path / "bvse.parquet"
    pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "bvse_e3d_ev": [0.3, 0.9, np.nan],
            "failure": ["", "", ""],
        }
    ).to_parquet(cache)
    monkeypatch.setattr(sequential, "BVSE", cache)
    assert sequential.load_barriers().to_dict() == {"a": 0.3, "b": 0.9, "c": 0.9}
    pd.DataFrame(
        {"id": ["a", "d"], "bvse_e3d_ev": [0.3, np.nan], "failure": ["", "no Li+ parameters"]}
    ).to_parquet(cache)
    out = sequential.load_barriers()
    assert out["a"] == 0.3 and np.isnan(out["d"])  # a failure is unknown, not slow
