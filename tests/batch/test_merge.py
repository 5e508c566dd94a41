"""Sharded screening plus merge gives exactly the unsharded outputs; finished shards are
skipped, killed shards resume from their chunk checkpoints, and a merge with missing
shards says which."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pandas as pd
import pytest
from typer.testing import CliRunner

from miscreen.batch import (
    LocalBackend,
    Predictor,
    ShardError,
    ShardSpec,
    merge_shards,
    screen_shard,
)
from miscreen.batch.backends import screen_chunk
from miscreen.batch.run import shard_paths
from miscreen.cli import app

runner = CliRunner()


def invoke(*args: str, env: dict[str, str] | None = None):
    result = runner.invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def failure_rows(path) -> set[tuple]:
    return set(pd.read_csv(path).fillna("").itertuples(index=False, name=None))


@pytest.fixture(scope="module")
def sharded(batch_run):
    """Three shards (one through the SLURM array variables) and their merge."""
    config = batch_run.config("sharded")
    invoke("screen", str(config), "--shard", "0/3")
    invoke("screen", str(config), "--shard", "2/3")
    env = {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "3"}
    shard1 = invoke("screen", str(config), env=env)
    assert "shard 1/3 finished" in shard1.output
    invoke("merge", str(config))
    return config, batch_run.root / "results" / "sharded" / "batch"


def test_sharded_merge_is_byte_identical_to_unsharded(batch_run, sharded):
    _, run = sharded
    reference = (batch_run.reference / "candidates.csv").read_bytes()
    assert (run / "candidates.csv").read_bytes() == reference
    ref = pd.read_csv(batch_run.reference / "candidates.csv")
    assert ref["rank"].notna().sum() > 150  # the pool really was ranked
    assert "mbd-" in " ".join(ref["id"].astype(str))  # the store source took part
    pd.testing.assert_frame_equal(
        pd.read_parquet(run / "candidates.parquet"),
        pd.read_parquet(batch_run.reference / "candidates.parquet"),
        check_dtype=False,
    )


def test_merged_failures_and_manifest(batch_run, sharded):
    _, run = sharded
    assert failure_rows(run / "failures.csv") == failure_rows(batch_run.reference / "failures.csv")
    reasons = pd.read_csv(run / "failures.csv").set_index("id")["reason"]
    assert "unparsable composition" in reasons["bad-formula"]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stages"]["screen"]["shards"] == 3
    assert manifest["stages"]["screen"]["candidates"] == len(pd.read_csv(run / "candidates.csv"))


def test_each_shard_owns_a_disjoint_slice(sharded):
    _, run = sharded
    tables = [pd.read_parquet(p) for p in sorted((run / "shards").glob("shard-*-of-0003.parquet"))]
    ids = [i for t in tables for i in t["id"]]
    assert len(tables) == 3 and len(ids) == len(set(ids))
    assert not list((run / "shards").glob("*.parts"))  # checkpoints removed once finished


def test_finished_shard_is_not_redone(sharded):
    config, run = sharded
    table = run / "shards" / "shard-0000-of-0003.parquet"
    before = table.stat().st_mtime_ns
    result = invoke("screen", str(config), "--shard", "0/3")
    assert "shard 0/3 was already finished" in result.output
    assert table.stat().st_mtime_ns == before


def test_unsharded_cli_screen_streams_to_the_same_outputs(batch_run):
    invoke("screen", str(batch_run.config("whole", chunk=25)))
    got = batch_run.root / "results" / "whole" / "batch" / "candidates.csv"
    assert got.read_bytes() == (batch_run.reference / "candidates.csv").read_bytes()


class Killed(Exception):
    """Stands for the job being killed mid-shard."""


class KilledAfter(LocalBackend):
    """The real local backend, killed after ``n`` chunks."""

    def __init__(self, n: int, *args) -> None:
        super().__init__(*args)
        self.n = n

    def map(self, tasks):
        def until_killed():
            for started, task in enumerate(tasks):
                if started == self.n:
                    raise Killed
                yield task

        yield from super().map(until_killed())


class Counting(LocalBackend):
    """The real local backend, counting the chunks it predicts."""

    computed = 0

    def map(self, tasks):
        for result in super().map(tasks):
            self.computed += 1
            yield result


def test_killed_shard_resumes_from_its_checkpoints(batch_run):
    cfg = batch_run.load("killed", chunk=30)
    shard = ShardSpec(0, 1)
    with pytest.raises(Killed):
        screen_shard(cfg, shard, KilledAfter(3, Predictor.from_config(cfg)))
    parts = shard_paths(cfg, shard).parts
    assert len(list(parts.glob("chunk-*.failures.parquet"))) == 3
    assert not shard_paths(cfg, shard).done.exists()
    resumed = Counting(Predictor.from_config(cfg))
    result = screen_shard(cfg, shard, resumed)
    total_chunks = -(-result.rows // 30)
    assert resumed.computed == total_chunks - 3
    merge_shards(cfg, 1)
    got = (cfg.run_dir / "candidates.csv").read_bytes()
    assert got == (batch_run.reference / "candidates.csv").read_bytes()


def test_merge_names_missing_shards_and_changed_inputs_redo_a_shard(batch_run):
    config = batch_run.config("partial")
    invoke("screen", str(config), "--shard", "1/3")
    result = runner.invoke(app, ["merge", str(config)])
    assert result.exit_code == 1
    assert "missing 0, 2" in result.output and "--shard i/N" in result.output
    csv = batch_run.root / "cands.csv"
    stat = csv.stat()
    try:
        os.utime(csv, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        redo = invoke("screen", str(config), "--shard", "1/3")
        assert "shard 1/3 finished" in redo.output  # not "already finished": inputs changed
    finally:
        os.utime(csv, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_bad_shard_option_is_a_usage_error(batch_run):
    result = runner.invoke(app, ["screen", str(batch_run.config("bad")), "--shard", "3/3"])
    assert result.exit_code == 2 and "out of range" in result.output


class OtherDisk(LocalBackend):
    """Workers that write their checkpoints to their own disk, not the shared results."""

    def __init__(self, elsewhere, *args) -> None:
        super().__init__(*args)
        self.elsewhere = elsewhere

    def map(self, tasks):
        for task in tasks:
            local = replace(
                task,
                table=self.elsewhere / task.table.name,
                failures=self.elsewhere / task.failures.name,
            )
            yield screen_chunk(self.predictor, local)


def test_checkpoints_the_client_cannot_see_are_a_clear_error(batch_run, tmp_path):
    cfg = batch_run.load("otherdisk", chunk=30)
    backend = OtherDisk(tmp_path, Predictor.from_config(cfg))
    with pytest.raises(ShardError, match="filesystem the client and all workers share"):
        screen_shard(cfg, ShardSpec(0, 1), backend)
    assert list(tmp_path.glob("chunk-000000*.parquet"))  # the worker's work is kept there


def test_streamed_ranking_equals_an_in_memory_screen(batch_run):
    """The one screening path (chunks, checkpoints, merge) ranks exactly as predicting the
    whole pool at once and ranking it would."""
    from miscreen import pipeline
    from miscreen.fetch.sources import load_candidates
    from miscreen.screen import Filters, rank_candidates
    from miscreen.train.routing import load_models

    cfg = batch_run.load("reference")
    predicted, _ = pipeline.predict(cfg, load_models(cfg.models), load_candidates(cfg).records)
    ranked = rank_candidates(predicted, Filters.from_config(cfg.screen), cfg.screen.score)
    streamed = pd.read_csv(batch_run.reference / "candidates.csv")
    assert len(streamed) == len(ranked) > 150
    assert streamed["id"].astype(str).tolist() == ranked["id"].astype(str).tolist()
    rank = ranked["rank"].astype("float").fillna(-1).to_numpy()
    assert (streamed["rank"].fillna(-1).to_numpy() == rank).all()
    assert streamed["excluded_reason"].fillna("").tolist() == ranked["excluded_reason"].tolist()
    diff = (streamed["predicted_log10_sigma"] - ranked["predicted_log10_sigma"]).abs()
    assert diff.max() < 1e-4  # candidates.csv keeps 6 significant digits


def test_merge_checks_the_best_rows(batch_run):
    """With checks configured, the merge (here of two shards) adds a band gap with its
    method to every ranked row and BVSE barriers, or why none, to the best three."""
    extra = (
        "screen:\n  min_band_gap: 1.0\n  bvse_top: 3\n  references:\n"
        "    - {kind: jsonl, dataset: mp-2018, require_elements: []}\n"
    )
    config = batch_run.config("checked", extra=extra)
    for shard in ("0/2", "1/2"):
        invoke("screen", str(config), "--shard", shard)
    invoke("merge", str(config))
    run = batch_run.root / "results" / "checked" / "batch"
    ranked = pd.read_parquet(run / "candidates.parquet").dropna(subset=["rank"])
    assert set(ranked["band_gap_method"]) <= {"source", "composition_model"}
    assert (ranked["p_band_gap"] >= 0.1).all()
    best = ranked.sort_values("rank").head(3)
    assert best["bvse_method"].str.len().gt(0).all()
    assert ranked.sort_values("rank")["bvse_method"].iloc[3:].str.startswith("not checked").all()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stages"]["screen"]["top_checks"]["band_gap_training_rows"] == 1056
    # each prediction names the training rows it rests on, and the why says so
    assert ranked["rests_on"].str.contains(r"\(.+, -?\d+\.\d\) \d+%").all()
    assert ranked["why"].str.contains("; rests on ").all()
