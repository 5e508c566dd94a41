"""The machine-learned potentials (MD, relaxations): the pretrained CHGNet, its device and its
threads."""

from __future__ import annotations

import contextlib
import functools
import io
import os
from typing import Any


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when a GPU is visible to torch, else ``cpu``."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@functools.lru_cache(maxsize=4)
def load_chgnet(device: str = "cpu") -> Any:
    """The pretrained CHGNet (weights ship in the wheel), loaded once per process."""
    from chgnet.model import CHGNet

    with contextlib.redirect_stdout(io.StringIO()):
        return CHGNet.load(verbose=False, use_device=device)


def calculator(device: str = "cpu") -> Any:
    from chgnet.model.dynamics import CHGNetCalculator

    with contextlib.redirect_stdout(io.StringIO()):  # it prints the device
        return CHGNetCalculator(model=load_chgnet(device), use_device=device)


def set_threads(threads: int) -> None:
    """Torch intra-op threads (one per task by default: tasks run side by side)."""
    import torch

    torch.set_num_threads(max(1, int(threads)))


def default_threads() -> int:
    """Threads per task: ``SLURM_CPUS_PER_TASK`` in a SLURM job, else 1."""
    try:
        return max(1, int(os.environ.get("SLURM_CPUS_PER_TASK", "1")))
    except ValueError:
        return 1
