"""Percolation barriers of a periodic energy grid: the lowest energy at which the region
below it extends through the crystal in 1, 2 or 3 independent directions."""

from __future__ import annotations

import functools
import itertools
import math
import time

import numpy as np
from scipy import ndimage

from miscreen.verify.bvse_params import BVSETimeout

ENCUT_EV = 10.0  # barriers above this are reported as "no path" (NaN)
TOLERANCE_EV = 0.01  # bisection stops when the bracket is narrower than this

_FORWARD = [d for d in itertools.product((-1, 0, 1), repeat=3) if d > (0, 0, 0)]


@functools.lru_cache(maxsize=8)
def _wrap_links(shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voxel pairs adjacent across the cell boundary (26-connectivity) and their offset.

    Returns flat indices ``src``, ``dst`` and the lattice translation ``off`` (int, (n, 3))
    such that voxel ``dst`` in cell ``off`` touches voxel ``src`` in cell 0.
    """
    n = np.array(shape)
    on_face = np.zeros(shape, dtype=bool)
    on_face[[0, -1], :, :] = on_face[:, [0, -1], :] = on_face[:, :, [0, -1]] = True
    idx = np.argwhere(on_face)  # (b, 3)
    src, dst, off = [], [], []
    for d in _FORWARD:
        moved = idx + np.array(d)
        shift = np.floor_divide(moved, n)
        crossing = np.any(shift != 0, axis=1)
        src.append(np.ravel_multi_index(idx[crossing].T, shape))
        dst.append(np.ravel_multi_index((moved[crossing] % n).T, shape))
        off.append(shift[crossing])
    return np.concatenate(src), np.concatenate(dst), np.concatenate(off).astype(int)


def percolation_dimension(mask: np.ndarray) -> int:
    """Largest number of independent lattice directions (0-3) along which one connected
    component of the periodic boolean grid ``mask`` extends to infinity.

    Components are labelled inside the cell (26-connectivity, as bvlain), then joined across
    the cell faces with a union-find that tracks lattice offsets; a closed loop with a
    non-zero net offset is a percolation direction, and the rank of those is the dimension.
    """
    labels, count = ndimage.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
    if count == 0:
        return 0
    src, dst, off = _wrap_links(mask.shape)
    flat = labels.reshape(-1)
    la, lb = flat[src], flat[dst]
    keep = (la > 0) & (lb > 0)
    if not keep.any():
        return 0
    # One int64 key per (label a, label b, offset): a 1-D unique is much faster than rows.
    code = (off[keep] + 1) @ np.array([9, 3, 1])
    key = np.unique((la[keep].astype(np.int64) * (count + 1) + lb[keep]) * 27 + code)
    pair, code = np.divmod(key, 27)
    la_u, lb_u = np.divmod(pair, count + 1)
    links = np.column_stack([la_u, lb_u, code // 9 - 1, code // 3 % 3 - 1, code % 3 - 1])

    parent: dict[int, int] = {}
    shift: dict[int, np.ndarray] = {}  # offset of a label's cell relative to its parent's
    loops: dict[int, list[np.ndarray]] = {}

    def find(x: int) -> tuple[int, np.ndarray]:
        """Root of ``x`` and the offset of x's cell relative to the root's (compressing)."""
        if x not in parent:
            parent[x], shift[x] = x, np.zeros(3, dtype=int)
        path = []
        while parent[x] != x:
            path.append(x)
            x = parent[x]
        acc = np.zeros(3, dtype=int)
        for node in reversed(path):  # nearest the root first
            acc = acc + shift[node]
            parent[node], shift[node] = x, acc
        return x, (shift[path[0]] if path else acc)

    for a, b, *o in links.tolist():
        ra, pa = find(a)
        rb, pb = find(b)
        vec = pa + np.asarray(o) - pb  # cell of rb relative to ra
        if ra == rb:
            if vec.any():
                loops.setdefault(ra, []).append(vec)
        else:
            parent[rb], shift[rb] = ra, vec
            loops.setdefault(ra, []).extend(loops.pop(rb, []))
    return max(
        (int(np.linalg.matrix_rank(np.array(v, dtype=float))) for v in loops.values() if v),
        default=0,
    )


def percolation_barriers(
    energy: np.ndarray,
    *,
    encut: float = ENCUT_EV,
    tolerance: float = TOLERANCE_EV,
    deadline: float | None = None,
) -> tuple[float, float, float]:
    """1-D, 2-D, 3-D percolation energies (eV above the grid minimum; NaN above ``encut``).

    Bisection on the threshold, as bvlain: the region ``energy - min < t`` is tested for
    percolation; the reported value is the upper end of the final bracket.
    """
    region = energy - energy.min()
    seen: dict[float, int] = {}  # threshold -> dimension, shared by the three searches

    def dim_at(t: float) -> int:
        if t not in seen:
            if deadline is not None and time.monotonic() > deadline:
                raise BVSETimeout("exceeded the time limit in the percolation search")
            seen[t] = percolation_dimension(region < t)
        return seen[t]

    out: list[float] = []
    for d in (1, 2, 3):
        lo, hi, barrier = 0.0, encut, math.nan
        while hi - lo > tolerance:
            mid = 0.5 * (lo + hi)
            if dim_at(mid) >= d:
                hi = barrier = mid
            else:
                lo = mid
        out.append(round(barrier, 4))
    return out[0], out[1], out[2]
