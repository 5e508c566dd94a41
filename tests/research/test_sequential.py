"""benchmarks/sequential.py: the halves it chooses and checks on, and the functions it runs."""

from __future__ import annotations

import numpy as np

from tests.research import import_benchmark

sequential = import_benchmark("sequential")


def test_the_halves_are_disjoint_fixed_and_cover_every_row() -> None:
    a, b = sequential.half_rows(599, "A"), sequential.half_rows(599, "B")
    assert not set(a) & set(b) and sorted({*a, *b}) == list(range(599))
    assert np.array_equal(a, sequential.half_rows(599, "A"))
    assert np.array_equal(sequential.half_rows(7, "all"), np.arange(7))


def test_every_learned_function_gets_the_prior_and_two_run_without() -> None:
    plan = sequential.functions("physics", None)
    assert ("mli", "mli", True) in plan and ("random", "random", False) in plan
    assert ("mli_no_prior", "mli", False) in plan and ("mei_no_prior", "mei", False) in plan
    assert all(not guided for name, _, guided in sequential.functions("none", None))
    only = sequential.functions("physics", ["mli", "mei_no_prior"])
    assert [name for name, _, _ in only] == ["mli", "random", "mei_no_prior"]
