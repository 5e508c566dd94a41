"""Which candidates a shard owns: a stable hash of the id (sha1), never Python's ``hash()``.

A shard is ``index/count`` with a 0-based index. ``SLURM_ARRAY_TASK_ID`` and
``SLURM_ARRAY_TASK_COUNT`` name the shard of a job-array task when none is given.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ShardSpec:
    """Shard ``index`` (0-based) of ``count``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(
                f"shard {self.index}/{self.count} is out of range: "
                f"give INDEX/COUNT with 0 <= INDEX < COUNT, e.g. 3/10"
            )

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> ShardSpec:
    """``"3/10"`` -> ShardSpec(3, 10); a clear error for anything else."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(
            f"--shard expects INDEX/COUNT (0-based), e.g. 3/10; got {text!r}"
        ) from None
    return ShardSpec(index, count)


def shard_from_env(env: Mapping[str, str] = os.environ) -> ShardSpec | None:
    """The shard of a SLURM job-array task, or None outside an array job.

    The index is ``SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN`` so 1-based arrays work too.
    """
    if "SLURM_ARRAY_TASK_ID" not in env or "SLURM_ARRAY_TASK_COUNT" not in env:
        return None
    try:
        task = int(env["SLURM_ARRAY_TASK_ID"])
        count = int(env["SLURM_ARRAY_TASK_COUNT"])
        first = int(env.get("SLURM_ARRAY_TASK_MIN", "0") or 0)
    except ValueError as exc:
        raise ValueError(f"SLURM array variables are not integers: {exc}") from None
    return ShardSpec(task - first, count)


def shard_of(id_: str, count: int) -> int:
    """The shard (0-based) that owns candidate ``id_``: sha1 of the id modulo ``count``."""
    digest = hashlib.sha1(str(id_).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def shard_mask(ids: Sequence[object], shard: ShardSpec) -> np.ndarray:
    """Boolean mask of the ids ``shard`` owns."""
    if shard.count == 1:
        return np.ones(len(ids), dtype=bool)
    return np.fromiter(
        (shard_of(str(i), shard.count) == shard.index for i in ids), dtype=bool, count=len(ids)
    )
