"""Verify candidates with physics-based checks.

Tier 1, BVSE Li migration barriers: ``bvse`` (per structure and the table), with its
parameters, oxidation states, grid and percolation in ``bvse_*`` modules and its report
section in ``bvse_section``.

Tier 2, MD with CHGNet, one module per job: ``md_protocol`` (how long, how hot, how big),
``md_ordering`` (disordered cells), ``md_cell`` (the simulation cell), ``potential``
(CHGNet, device, threads), ``md_relax`` (relaxation), ``md_tasks`` (task folders and
checkpoints), ``md_dynamics`` (the MD loop), ``md_run`` (preparing and running a run's
tasks), ``md_analysis`` (diffusion and Arrhenius), ``md_results`` (per-candidate results and
tables) and ``md_section`` (the report section).

A stage package: it meets the others through ``miscreen.schema`` and never imports the
wiring (pipeline, cli, cases, batch); it returns data, and the wiring writes it (MD task
folders, which a task writes to resume from, are the one exception).
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
