"""The model study's input kinds are the pipeline's model names, and its prediction cache
never reads a file written under the kinds' earlier names."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from miscreen.featurize import PRESETS
from miscreen.train.routing import CELL_MODEL, COMPOSITION_MODEL, STRUCTURE_MODEL
from tests.research import import_benchmark


@pytest.fixture(scope="module")
def research() -> ModuleType:
    """``benchmarks/model_research.py``, imported without keeping its environment changes."""
    return import_benchmark("model_research")


def test_kinds_are_the_model_names_with_their_presets(research: ModuleType) -> None:
    assert research.KIND_PRESETS == {
        COMPOSITION_MODEL: "composition",
        CELL_MODEL: "cell",
        STRUCTURE_MODEL: "full",
    }
    assert set(research.KIND_PRESETS.values()) <= set(PRESETS)
    for study in ("quick", "full"):
        assert {v.kind for v in research.study(study)} == set(research.KIND_PRESETS)


def test_a_variant_names_a_current_kind(research: ModuleType) -> None:
    v = research.parse_variant("structure:anion::bound")
    assert (v.kind, v.groups, v.policy) == ("structure", ("anion",), "bound")
    for old in ("formula", "full"):
        with pytest.raises(ValueError, match="unknown input kind"):
            research.parse_variant(f"{old}::ensemble_noknn:bound")


def test_the_prediction_cache_ignores_files_of_the_old_kind_names(
    research: ModuleType, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # before the rename, kind "composition" meant composition + cell; its file must not be read
    stale = {"doi__floor": np.full(3, 9.0)}
    np.savez(tmp_path / "composition_base_ensemble_floor_s0_t100.npz", **stale)
    fresh = {"doi": {"floor": np.zeros(3)}}
    monkeypatch.setattr(research, "run_variant", lambda *args: fresh)
    v = research.Variant("composition")
    first = research.cached_run(None, v, 0, {}, 100, tmp_path)
    np.testing.assert_array_equal(first["doi"]["floor"], np.zeros(3))
    monkeypatch.setattr(research, "run_variant", lambda *args: pytest.fail("not cached"))
    again = research.cached_run(None, v, 0, {}, 100, tmp_path)
    np.testing.assert_array_equal(again["doi"]["floor"], np.zeros(3))


def test_the_verdict_rule_needs_twice_the_noise_and_every_seed_on_one_side(
    research: ModuleType,
) -> None:
    judge = research.judge
    assert judge([-0.10, -0.12, -0.11], [0.01, 0.01, 0.01])[4] == "better"
    assert judge([0.10, 0.12, 0.11], [0.01, 0.01, 0.01])[4] == "worse"
    assert judge([-0.10, -0.12, 0.01], [0.01, 0.01, 0.01])[4] == "noise"  # one seed higher
    assert judge([-0.03, -0.03, -0.03], [0.02, 0.02, 0.02])[4] == "noise"  # under 2 x noise
    delta, sd, noise, lower, _ = judge([-0.2], [0.05])  # one seed: no seed sd, the bootstrap
    assert (delta, lower, noise) == (-0.2, 1, 0.05) and sd != sd
