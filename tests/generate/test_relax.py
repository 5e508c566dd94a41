"""Relaxation of generated candidates: a few steps on a tiny cell, the step and time limits,
one result file per candidate, and a batch killed halfway that resumes where it stopped."""

from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pymatgen.util
import pytest
from pymatgen.core import Structure

from miscreen import potentials
from miscreen.config import load_config
from miscreen.generate import relax
from miscreen.pipeline import generation, generation_jobs

EXAMPLES = Path(pymatgen.util.__file__).parent / "structures"


def li2o(stretch: float = 1.1) -> Structure:
    s = Structure.from_file(EXAMPLES / "Li2O.json")
    s.remove_oxidation_states()
    s.scale_lattice(s.volume * stretch)
    return s


def test_a_few_steps_on_a_tiny_cell_lower_the_energy_and_shrink_it():
    start = li2o(1.15)
    settings = relax.RelaxSettings(steps=4, fmax=1e-4)
    run = relax.relaxer(settings)
    first = run(start)
    assert first.steps == 4 and first.stopped == potentials.STEP_LIMIT and not first.converged
    assert first.structure.volume < start.volume
    assert math.isfinite(first.max_force_ev_a)
    again = run(first.structure)
    assert again.energy_ev_per_atom < first.energy_ev_per_atom


def test_the_time_limit_stops_a_relaxation():
    result = relax.relaxer(relax.RelaxSettings(steps=50, fmax=1e-6, time_limit_s=1e-6))(li2o())
    assert result.stopped == potentials.TIME_LIMIT and result.steps <= 1


def test_a_finished_result_is_read_not_recomputed(tmp_path):
    settings = relax.RelaxSettings(steps=3)
    items = [(0, "a", li2o()), (1, "b", li2o(1.05))]
    first = relax.relax_all(tmp_path, items, settings)
    stamps = {i: relax.result_path(tmp_path, i).stat().st_mtime_ns for i in first}

    def never(settings):
        raise AssertionError("relaxed again")

    mp = pytest.MonkeyPatch()
    mp.setattr(relax, "relaxer", never)
    try:
        second = relax.relax_all(tmp_path, items, settings)
    finally:
        mp.undo()
    assert {i: r.energy_ev_per_atom for i, r in second.items()} == {
        i: r.energy_ev_per_atom for i, r in first.items()
    }
    assert {i: relax.result_path(tmp_path, i).stat().st_mtime_ns for i in first} == stamps
    # another setting or another start is not taken for this one
    assert relax.read_result(relax.result_path(tmp_path, 0), li2o(), relax.RelaxSettings()) is None
    assert relax.read_result(relax.result_path(tmp_path, 0), li2o(1.2), settings) is None


CONFIG = """run_name: kill
results_dir: {root}/results
cache_dir: {root}/cache
candidates:
  - kind: pymatgen
    names: [Li2O]
generate:
  parents: {{ids: ["pymatgen:Li2O"]}}
  substitutions: {{O: [S, Se]}}
  relax_steps: 6
  fmax: 1.0e-6
  drop_known: false
"""

RELAX = (
    "import sys; from miscreen.config import load_config; "
    "from miscreen.pipeline import generation, generation_jobs; "
    "cfg = load_config(sys.argv[1]); "
    "generation_jobs.relax_local(cfg, generation.read_plan(cfg))"
)


def test_a_killed_batch_resumes_skipping_what_is_done(tmp_path):
    """A relaxation process killed once the first result file is written loses only the
    structure in progress; the rerun (in two processes) keeps that file as it is and relaxes
    the rest, with the results of an uninterrupted run."""
    path = tmp_path / "kill.yaml"
    path.write_text(CONFIG.format(root=tmp_path))
    cfg = load_config(path)
    plan = generation.plan_generation(cfg)
    assert len(plan["candidates"]) == 3
    folder = cfg.run.generate_relaxed
    proc = subprocess.Popen([sys.executable, "-c", RELAX, str(path)])
    try:
        deadline = time.monotonic() + 120
        while not relax.result_path(folder, 0).exists():
            assert proc.poll() is None and time.monotonic() < deadline, "no first result"
            time.sleep(0.02)
        proc.kill()
    finally:
        proc.wait()
    done = sorted(p.name for p in folder.glob("relaxed-*.json"))
    assert done[0] == "relaxed-00000.json" and len(done) < 3  # killed halfway
    kept = relax.result_path(folder, 0).read_bytes()
    resumed = generation_jobs.relax_local(cfg, generation.read_plan(cfg), jobs=2)  # two processes
    assert relax.result_path(folder, 0).read_bytes() == kept
    assert sorted(resumed) == [0, 1, 2]
    settings = generation.settings(cfg)
    fresh = relax.relax_all(
        tmp_path / "fresh", generation.plan_items(generation.read_plan(cfg)), settings
    )
    for i in range(3):
        assert resumed[i].energy_ev_per_atom == pytest.approx(fresh[i].energy_ev_per_atom, abs=1e-6)
        assert resumed[i].steps == fresh[i].steps


def test_a_left_handed_cell_relaxes_like_its_right_handed_twin():
    """CHGNet's stress takes the cell's signed volume: in a left-handed cell (pymatgen's
    Li10GeP2S12 example is one) it has the wrong sign, and an uncorrected cell relaxation
    runs away. The relaxation makes the cell right-handed first."""
    start = li2o(1.1)
    mirrored = Structure(-start.lattice.matrix, start.species, -start.frac_coords)
    assert mirrored.lattice.volume > 0 > np.linalg.det(mirrored.lattice.matrix)
    fixed = potentials.right_handed(mirrored)
    assert np.linalg.det(fixed.lattice.matrix) > 0
    assert fixed.lattice.volume == pytest.approx(start.lattice.volume)
    assert fixed.cart_coords == pytest.approx(mirrored.cart_coords)
    run = relax.relaxer(relax.RelaxSettings(steps=30, fmax=1e-3))
    left, right = run(mirrored), run(start)
    assert left.structure.volume < start.volume  # it shrinks back, as the right-handed one
    assert left.energy_ev_per_atom == pytest.approx(right.energy_ev_per_atom, abs=1e-4)
