"""Shard assignment: stable sha1 of the id, a partition of the pool, SLURM array variables,
and store sources streamed in deterministic chunks."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from miscreen import schema as S
from miscreen.batch import ShardSpec, parse_shard, shard_from_env, shard_of
from miscreen.batch.chunks import iter_chunks, plan_shard, read_chunk
from miscreen.catalog import RunCatalog
from miscreen.config import StoreSource
from miscreen.store.structures import read_store


def test_shard_of_is_sha1_of_the_id_not_python_hash():
    digest = hashlib.sha1(b"mp-696138").digest()
    assert shard_of("mp-696138", 10) == int.from_bytes(digest[:8], "big") % 10
    assert [shard_of("mp-696138", n) for n in (1, 3, 10)] == [0, 2, 0]  # pinned: must never change


def test_shards_partition_the_ids():
    ids = [f"mp-{i}" for i in range(3000)]
    owners = [shard_of(i, 3) for i in ids]
    counts = pd.Series(owners).value_counts()
    assert set(counts.index) == {0, 1, 2}
    assert counts.min() > 900  # balanced: each shard near 1000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3", "INDEX/COUNT"),
        ("a/b", "INDEX/COUNT"),
        ("3/3", "out of range"),
        ("0/0", "out of range"),
    ],
)
def test_bad_shard_is_a_clear_error(text, message):
    with pytest.raises(ValueError, match=message):
        parse_shard(text)


def test_parse_shard_and_its_files(tmp_path):
    spec = parse_shard("3/10")
    assert spec == ShardSpec(3, 10)
    files = RunCatalog(tmp_path).shard(spec.index, spec.count)
    assert files.name == "shard-0003-of-0010" and files.done.parent == tmp_path / "shards"
    assert files.table.name == "shard-0003-of-0010.parquet"
    assert files.chunk(12)[1] == files.parts / "chunk-000012.failures.parquet"


def test_slurm_array_variables_name_the_shard():
    assert shard_from_env({}) is None
    env = {"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "10"}
    assert shard_from_env(env) == ShardSpec(4, 10)
    one_based = {**env, "SLURM_ARRAY_TASK_ID": "10", "SLURM_ARRAY_TASK_MIN": "1"}
    assert shard_from_env(one_based) == ShardSpec(9, 10)


def test_store_streams_in_chunks_that_cover_each_shard_once(batch_run):
    cfg = batch_run.load("chunks").model_copy(
        update={"candidates": (StoreSource(path=batch_run.root / "store"),)}
    )
    whole = read_store(batch_run.root / "store")
    seen = []
    for i in range(3):
        plan = plan_shard(cfg, ShardSpec(i, 3))
        chunks = [read_chunk(pieces, plan.columns) for pieces in iter_chunks(plan, 7)]
        assert all(len(c) == 7 for c in chunks[:-1]) and 0 < len(chunks[-1]) <= 7
        assert sum(len(c) for c in chunks) == plan.total
        ids = [i for c in chunks for i in c[S.ID]]
        assert all(shard_of(x, 3) == i for x in ids)
        seen += ids
    assert sorted(seen) == sorted(whole[S.ID])
    plan = plan_shard(cfg, ShardSpec(0, 1))
    unsharded = pd.concat([read_chunk(p, plan.columns) for p in iter_chunks(plan, 7)])
    unsharded = unsharded.reset_index(drop=True)
    pd.testing.assert_frame_equal(unsharded, whole)  # same rows, columns and dtypes


def test_store_rows_read_only_their_rows_across_row_groups(tmp_path):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from miscreen.batch.chunks import StoreRows

    table = pa.table({S.ID: [f"c{i}" for i in range(23)], "x": np.arange(23.0)})
    path = tmp_path / "structures.parquet"
    pq.write_table(table, path, row_group_size=5)  # groups of 5, 5, 5, 5, 3
    assert pq.ParquetFile(path).metadata.num_row_groups == 5
    positions = np.array([1, 4, 5, 13, 21, 22])  # groups 0, 0, 1, 2, 4, 4: group 3 unread
    rows = StoreRows(str(path), positions).read()
    assert rows[S.ID].tolist() == ["c1", "c4", "c5", "c13", "c21", "c22"]
    assert rows["x"].tolist() == positions.astype(float).tolist()


def test_a_store_the_worker_cannot_see_is_a_clear_error(tmp_path):
    import numpy as np

    from miscreen.batch.chunks import StoreRows

    missing = tmp_path / "elsewhere" / "structures.parquet"
    with pytest.raises(FileNotFoundError, match=f"{missing}.*filesystem the client"):
        StoreRows(str(missing), np.arange(3)).read()
