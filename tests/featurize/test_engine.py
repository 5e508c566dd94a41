"""Cache, failures, time limit, parallelism and schema checks of the featurize engine."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from miscreen import schema as S
from miscreen.featurize import (
    FeatureSchema,
    engine,
    feature_schema,
    featurize_records,
    featurize_table,
    resolve_jobs,
)
from tests.featurize.conftest import record, rocksalt


def test_second_run_recomputes_nothing(records: pd.DataFrame, tmp_path) -> None:
    first = featurize_table(records, "full", cache_dir=tmp_path)
    assert (first.info["computed"] != "").all()
    second = featurize_table(records, "full", cache_dir=tmp_path)
    assert (second.info["computed"] == "").all()
    pd.testing.assert_frame_equal(first.features, second.features)
    assert list(second.info["oxidation_method"]) == list(first.info["oxidation_method"])


def test_cache_recomputes_only_what_changed(records: pd.DataFrame, tmp_path) -> None:
    featurize_table(records, "cell", cache_dir=tmp_path)
    changed = records.copy()
    changed.loc[changed[S.ID] == "licl", S.STRUCTURE] = record("x", rocksalt(0.9))[S.STRUCTURE]
    res = featurize_table(changed, "full", cache_dir=tmp_path).info.set_index(S.ID)
    assert res.loc["licl", "computed"] == "cell,comp,ion,li,struct"
    assert res.loc["licl-half", "computed"] == "ion,li,struct"  # comp and cell were cached
    assert res.loc["li3ps4-comp", "computed"] == "ion"  # no structure: nothing else to do


def test_bad_rows_become_failures_and_the_chunk_goes_on(records: pd.DataFrame) -> None:
    big = rocksalt()
    big.make_supercell([8, 8, 8])  # 4096 sites: refused as pathological
    bad = pd.DataFrame(
        [
            {**record("bad-json", None, "LiCl"), S.STRUCTURE: "{not json"},
            record("bad-comp", None, "Xq2Li"),
            record("huge", big),
        ]
    )
    feats, fails, _ = featurize_records(pd.concat([records, bad], ignore_index=True), "full")
    assert set(feats.index) == set(records[S.ID])
    reasons = fails.set_index(S.ID)["reason"]
    assert set(reasons.index) == {"bad-json", "bad-comp", "huge"}
    assert "JSONDecodeError" in reasons["bad-json"]
    assert "unparsable composition" in reasons["bad-comp"]
    assert "too large" in reasons["huge"]
    assert (fails["stage"] == "featurize").all()


def test_time_limit_turns_a_slow_structure_into_a_failure(records: pd.DataFrame) -> None:
    slow = rocksalt()
    slow.make_supercell([4, 4, 4])  # 512 sites: far more than 1 ms of work
    rows = pd.concat([records, pd.DataFrame([record("slow", slow)])], ignore_index=True)
    res = featurize_table(rows, "full", time_limit=1e-3)
    assert "slow" in set(res.failures[S.ID])
    assert "time limit" in res.failures.set_index(S.ID).loc["slow", "reason"]
    ok = featurize_table(rows, "full", time_limit=60)
    assert ok.failures.empty


def test_jobs_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "_usable_cpus", lambda: 8)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    assert resolve_jobs(None) == 1  # never every core by default
    assert resolve_jobs(3) == 3
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "4")
    assert resolve_jobs(None) == 4
    assert resolve_jobs(2) == 2  # explicit jobs win over the allocation
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "32")
    assert resolve_jobs(None) == 8  # capped by the CPUs this process may use
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "four")
    with pytest.raises(ValueError, match="SLURM_CPUS_PER_TASK"):
        resolve_jobs(None)
    with pytest.raises(ValueError, match="jobs must be >= 1"):
        resolve_jobs(0)


def test_parallel_run_matches_serial(records: pd.DataFrame, monkeypatch) -> None:
    monkeypatch.setattr(engine, "_usable_cpus", lambda: 2)
    many = pd.concat(
        [records.assign(**{S.ID: records[S.ID] + f"-{i}"}) for i in range(6)], ignore_index=True
    )
    serial = featurize_table(many, "full", jobs=1, chunk_size=4)
    parallel = featurize_table(many, "full", jobs=2, chunk_size=4)
    pd.testing.assert_frame_equal(serial.features, parallel.features)


def test_schema_round_trip_and_mismatch(records: pd.DataFrame, tmp_path) -> None:
    schema = feature_schema("full")
    assert FeatureSchema.from_dict(schema.to_dict()) == schema
    schema.check(FeatureSchema.from_dict(schema.to_dict()))
    with pytest.raises(ValueError, match=r"feature schema mismatch.*features missing"):
        schema.check(feature_schema("composition"))
    swapped = FeatureSchema(
        schema.preset, (schema.names[1], schema.names[0], *schema.names[2:]), schema.version
    )
    with pytest.raises(ValueError, match="different order"):
        schema.check(swapped)
    with pytest.raises(ValueError, match="feature schema mismatch"):
        schema.check(FeatureSchema(schema.preset, schema.names, schema.version + "x"))
    with pytest.raises(ValueError, match="unknown feature preset"):
        feature_schema("everything")


def test_cell_preset_needs_no_structure() -> None:
    rows = pd.DataFrame([record("c", None, "Li7La3Zr2O12")])
    rows[S.SPACEGROUP] = 230.0
    rows[list(S.LATTICE)] = [12.97, 12.97, 12.97, 90.0, 90.0, 90.0]
    rows[S.Z] = 8.0
    feats, fails, schema = featurize_records(rows, "cell")
    assert fails.empty and list(feats.columns) == list(schema.names)
    assert feats.loc["c", "cell:point_group_order"] == 48
    assert math.isclose(feats.loc["c", "cell:li_per_volume"], 56 / 12.97**3, rel_tol=1e-6)
