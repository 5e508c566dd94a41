"""MD with CHGNet: preparing cells (ordering, supercells, handedness) and resumable
trajectories (a task killed with SIGKILL continues the very trajectory it would have run)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pymatgen.core
import pytest
from pymatgen.core import Lattice, Structure

from miscreen.potentials import right_handed
from miscreen.verify.md_cell import make_supercell, prepare, supercell_scaling, widths
from miscreen.verify.md_dynamics import run_md_task
from miscreen.verify.md_ordering import order_structure
from miscreen.verify.md_protocol import QUICK, STANDARD, MDError, MDProtocol
from miscreen.verify.md_relax import Relaxed
from miscreen.verify.md_tasks import (
    CHECKPOINT_JSON,
    FRAMES_PREFIX,
    FRAMES_SUFFIX,
    MDTask,
    Trajectory,
    read_trajectory,
    task_progress,
    write_prepared,
    write_relaxed,
    write_task,
)

STRUCTURES = Path(pymatgen.core.__file__).parents[1] / "util" / "structures"
# no supercell, 2 fs steps, a frame every 2 steps, a checkpoint every 10
TINY = MDProtocol("test", (900.0, 1000.0), 0.0, 0.24, save_every=2, checkpoint_every=10)


@pytest.fixture(scope="module")
def lgps() -> Structure:
    return Structure.from_file(STRUCTURES / "Li10GeP2S12.json")


def test_lgps_is_ordered_by_ewald_energy_into_a_right_handed_50_atom_cell(lgps):
    assert not lgps.is_ordered and len(lgps) == 58
    prepared = prepare("lgps", lgps, QUICK)
    cell = prepared.structure
    assert cell.is_ordered and len(cell) == 50
    assert cell.composition.reduced_formula == "Li10Ge(PS6)2"  # Li20Ge2P4S24
    assert prepared.ordering == "ewald" and prepared.scaling == (1, 1, 1)
    assert prepared.oxidation_states == {"Li": 1, "Ge": 4, "P": 5, "S": -2}
    # pymatgen's cell is left-handed; CHGNet's stress needs a right-handed one
    assert np.linalg.det(lgps.lattice.matrix) < 0 < np.linalg.det(cell.lattice.matrix)
    assert min(cell.distance_matrix[np.triu_indices(len(cell), 1)]) > 1.8


def test_orderings_above_the_cap_are_sampled_at_random(lgps):
    ordered = order_structure(lgps, max_orderings=10, random_orderings=4)
    assert ordered.method == "ewald (best of 4 random)" and ordered.orderings > 1e6
    again = order_structure(lgps, max_orderings=10, random_orderings=4)
    assert again.structure == ordered.structure  # the same seed, the same sample
    assert ordered.structure.is_ordered
    assert ordered.structure.composition == order_structure(lgps).structure.composition


def test_unbalanced_or_li_free_cells_are_refused_with_a_reason():
    with pytest.raises(MDError, match="has no Li"):
        prepare("x", Structure(Lattice.cubic(4), ["Na", "Cl"], [[0, 0, 0], [0.5] * 3]), QUICK)
    odd = Structure(
        Lattice.cubic(4), [{"Li": 0.5}, "Cl", "Cl"], [[0, 0, 0], [0.5] * 3, [0, 0.5, 0.5]]
    )
    with pytest.raises(MDError, match="no charge-balanced oxidation states for LiCl4"):
        order_structure(odd)  # Li0.5Cl2: whole atoms in a doubled cell, still unbalanced


def test_right_handed_keeps_every_atom_where_it_was(lgps):
    fixed = right_handed(lgps)
    assert np.linalg.det(fixed.lattice.matrix) > 0
    np.testing.assert_allclose(fixed.cart_coords, lgps.cart_coords, atol=1e-9)


def test_supercells_follow_the_protocol():
    li2o = Structure.from_file(STRUCTURES / "Li2O.json")  # 3 atoms, widths ~2.7 A
    quick = make_supercell(li2o, QUICK)
    assert len(quick) <= QUICK.max_atoms and len(quick) >= 30
    standard = make_supercell(li2o, STANDARD)
    assert min(widths(standard)) >= 10.0
    assert supercell_scaling(li2o, STANDARD) == (4, 4, 4)  # the smallest that does it


def _task(root: Path) -> Path:
    """A tiny task (Li2O, 6 atoms, 120 steps); relaxation skipped (its result given)."""
    cdir = root / "li2o"
    prepared = prepare("li2o", Structure.from_file(STRUCTURES / "Li2O.json") * (2, 1, 1), TINY)
    write_prepared(cdir, prepared)
    write_relaxed(cdir, Relaxed(prepared.structure, 0.0, 0.0, 0, True))
    write_task(cdir / "900K", MDTask("li2o", 900.0, TINY, seed=7))
    return cdir / "900K"


@pytest.fixture(scope="module")
def reference_dir(tmp_path_factory) -> Path:
    """A task run without interruption."""
    tdir = _task(tmp_path_factory.mktemp("reference"))
    status = run_md_task(tdir, threads=1, progress=False)
    assert status.done and status.step == TINY.total_steps == 120
    return tdir


@pytest.fixture(scope="module")
def reference(reference_dir) -> Trajectory:
    return read_trajectory(reference_dir)


def test_md_runs_and_saves_every_frame_with_its_step(reference):
    traj = reference
    assert traj.positions.shape == (60, 6, 3)
    np.testing.assert_array_equal(traj.steps, np.arange(2, 121, 2))
    assert np.all(np.isfinite(traj.potential_ev)) and np.all(traj.temperature_k > 0)
    # unwrapped positions: consecutive frames 4 fs apart move by well under an angstrom
    assert np.abs(np.diff(traj.positions, axis=0)).max() < 0.5


def test_a_finished_task_is_not_run_again(reference_dir):
    tdir = reference_dir
    before = {p: p.stat().st_mtime_ns for p in tdir.iterdir()}
    status = run_md_task(tdir, threads=1, progress=False)
    assert status.done and status.wall_s == 0.0
    assert before == {p: p.stat().st_mtime_ns for p in tdir.iterdir()}


def test_a_killed_task_resumes_from_its_checkpoint_and_continues_the_same_trajectory(
    tmp_path, reference
):
    tdir = _task(tmp_path)
    code = (
        "import sys; from miscreen.verify.md_dynamics import run_md_task; run_md_task(sys.argv[1])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    try:
        while task_progress(tdir) < 20:  # two checkpoints written: kill it mid-run
            assert proc.poll() is None and time.monotonic() < deadline, "the task did not start"
            time.sleep(0.02)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    killed_at = task_progress(tdir)
    assert 20 <= killed_at < TINY.total_steps  # really stopped part-way
    # a kill between writing a chunk and its checkpoint leaves a chunk ahead: ignored
    stray = tdir / f"{FRAMES_PREFIX}{killed_at + 10:09d}{FRAMES_SUFFIX}"
    stray.write_bytes(b"half a chunk")
    assert read_trajectory(tdir).steps.max() == killed_at

    status = run_md_task(tdir, threads=1, progress=False)
    assert status.done and status.step == TINY.total_steps
    resumed = read_trajectory(tdir)
    np.testing.assert_array_equal(resumed.steps, reference.steps)  # totals N, no gap/repeat
    np.testing.assert_allclose(resumed.positions, reference.positions, rtol=0, atol=1e-8)
    ckpt = json.loads((tdir / CHECKPOINT_JSON).read_text())
    assert ckpt["step"] == TINY.total_steps


def test_a_task_of_another_protocol_is_not_overwritten(tmp_path):
    tdir = _task(tmp_path)
    other = MDTask("li2o", 900.0, QUICK, seed=7)
    with pytest.raises(MDError, match="holds a different task"):
        write_task(tdir, other)
