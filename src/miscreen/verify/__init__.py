"""Verify candidates with physics-based checks (tier 1: BVSE Li migration barriers).

A stage package: it meets the others through ``miscreen.schema`` and never imports the
wiring (pipeline, cli, cases, batch).
"""

from __future__ import annotations

from miscreen.verify.bvse import (
    BVSE_COLUMNS,
    BVSE_E1D,
    BVSE_E2D,
    BVSE_E3D,
    BVSE_METHOD,
    BVSE_OXIDATION,
    BarrierResult,
    BVSEError,
    BVSETimeout,
    barrier_table,
    bvse_barriers,
)

__all__ = [
    "BVSE_COLUMNS",
    "BVSE_E1D",
    "BVSE_E2D",
    "BVSE_E3D",
    "BVSE_METHOD",
    "BVSE_OXIDATION",
    "BVSEError",
    "BVSETimeout",
    "BarrierResult",
    "barrier_table",
    "bvse_barriers",
]
