"""MD set-up of issue 25: the potential and cell recorded per task and result, the refusal to
mix potentials or cells in one folder, the experimental (input) cell against the relaxed
one, the protocols' expected error of Ea, and the ``verify md`` options."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from typer.testing import CliRunner

from miscreen.cli.verify import app
from miscreen.errors import UserError
from miscreen.potentials import get_potential
from miscreen.verify.md_dynamics import run_md_task
from miscreen.verify.md_protocol import (
    BOLTZMANN_EV_K,
    QUICK,
    STANDARD,
    MDProtocol,
    diffusivity_rsd,
    ea_stderr,
    effective_hops,
    expected_ea_stderr,
    guessed_diffusivity,
)
from miscreen.verify.md_results import analyze_candidate
from miscreen.verify.md_run import MDCandidate, prepare_tasks
from miscreen.verify.md_tasks import (
    TASK_JSON,
    TaskMismatch,
    ensure_relaxed,
    read_relaxed,
    read_task,
)

TINY = MDProtocol("test", (900.0, 1000.0), 0.0, 0.04, save_every=2, checkpoint_every=10)


def li2o(a: float = 4.90) -> Structure:
    """Li2O 4 % wider than its lattice, so a relaxed cell visibly shrinks."""
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), ["Li", "O"], [[0.25] * 3, [0] * 3])


def plan(tmp_path, potential="chgnet", cell="experimental"):
    return prepare_tasks(tmp_path / "md", [MDCandidate("li2o", li2o())], TINY, 0, potential, cell)


def test_each_task_and_result_records_its_potential_version_and_cell(tmp_path):
    p, failures = plan(tmp_path, "sevennet-0", "relaxed")
    assert failures.empty and (p.potential, p.cell) == ("sevennet-0", "relaxed")
    assert p.potential_version == get_potential("sevennet-0").version
    task = json.loads((tmp_path / "md" / p.tasks[0] / TASK_JSON).read_text())
    assert task["potential"] == "sevennet-0" and task["cell"] == "relaxed"
    assert task["potential_version"].startswith("sevenn ") and "7net-0" in task["potential_version"]
    for t in p.tasks:
        assert run_md_task(tmp_path / "md" / t, threads=1, progress=False).done
    result = analyze_candidate(tmp_path / "md" / p.candidates[0], TINY)
    assert (result.potential, result.cell) == ("sevennet-0", "relaxed")
    assert result.to_dict()["potential_version"] == p.potential_version


def test_replanning_a_folder_with_another_potential_or_cell_is_refused_naming_it(tmp_path):
    p, _ = plan(tmp_path, "chgnet")
    for potential, cell in (("sevennet-0", "experimental"), ("chgnet", "relaxed")):
        with pytest.raises(TaskMismatch, match=str(tmp_path / "md" / "li2o")) as err:
            plan(tmp_path, potential, cell)
        assert isinstance(err.value, UserError) and "use another MD folder" in str(err.value)
    again, failures = plan(tmp_path, "chgnet")  # the same set-up: the tasks are kept
    assert failures.empty and again.tasks == p.tasks


def test_a_task_started_with_another_version_of_its_potential_is_not_resumed(tmp_path):
    p, _ = plan(tmp_path)
    tdir = tmp_path / "md" / p.tasks[0]
    task = json.loads((tdir / TASK_JSON).read_text())
    (tdir / TASK_JSON).write_text(
        json.dumps({**task, "potential_version": "chgnet 0.0.1, model 0.3.0"})
    )
    with pytest.raises(TaskMismatch, match=f"{tdir} was started with chgnet 0.0.1"):
        run_md_task(tdir, threads=1, progress=False)


def test_a_cell_relaxed_with_another_potential_is_refused(tmp_path):
    p, _ = plan(tmp_path, "chgnet", "experimental")
    cdir = tmp_path / "md" / p.candidates[0]
    ensure_relaxed(cdir, TINY, potential="chgnet", cell="experimental")
    with pytest.raises(TaskMismatch, match="was relaxed with chgnet \\(experimental cell\\)"):
        ensure_relaxed(cdir, TINY, potential="sevennet-0", cell="experimental")


def test_the_experimental_cell_keeps_the_input_lattice_and_the_relaxed_one_moves_it(tmp_path):
    exp, _ = plan(tmp_path / "a", "chgnet", "experimental")
    rel, _ = plan(tmp_path / "b", "chgnet", "relaxed")
    prepared = li2o().lattice.matrix
    at_exp = ensure_relaxed(
        tmp_path / "a" / "md" / exp.candidates[0], TINY, "cpu", "chgnet", "experimental"
    )
    at_rel = ensure_relaxed(
        tmp_path / "b" / "md" / rel.candidates[0], TINY, "cpu", "chgnet", "relaxed"
    )
    assert np.allclose(at_exp.structure.lattice.matrix, prepared, atol=1e-8)
    assert not at_exp.relax_cell and at_rel.relax_cell
    assert at_rel.structure.volume < 0.97 * at_exp.structure.volume
    stored = read_relaxed(tmp_path / "a" / "md" / exp.candidates[0])
    assert stored.potential == "chgnet" and stored.potential_version.startswith("chgnet ")
    assert read_task(tmp_path / "a" / "md" / exp.tasks[0]).cell == "experimental"


def test_older_task_files_read_as_chgnet_in_the_relaxed_cell():
    from miscreen.verify.md_tasks import MDTask

    old = {"candidate_id": "x", "temperature_k": 900.0, "protocol": TINY.to_dict(), "seed": 0}
    task = MDTask.from_dict(old)
    assert (task.potential, task.potential_version, task.cell) == ("chgnet", "", "relaxed")


# ---------------------------------------------------------------- expected error of Ea


def test_he_et_al_error_of_d_and_the_effective_hops_on_known_numbers():
    assert diffusivity_rsd(100.0) == pytest.approx(3.43 / 10 + 0.04)
    assert diffusivity_rsd(0.0) == math.inf
    # 1e-5 cm2/s = 1e-4 A2/fs; 10 ps; 20 Li; 2.5 A hops: 6 * 1e-4 * 1e4 * 20 / 6.25
    assert effective_hops(1e-5, 10.0, 20, 2.5) == pytest.approx(19.2)
    assert guessed_diffusivity(300.0, 0.25, 1e-7) == pytest.approx(1e-7)
    assert guessed_diffusivity(600.0, 0.25, 1e-7) == pytest.approx(
        1e-7 * math.exp(0.25 / BOLTZMANN_EV_K / 600.0)
    )


def test_ea_error_of_a_weighted_arrhenius_fit_on_known_numbers():
    # two points of equal weight, 1/T 1e-3 apart: slope error r * sqrt(2) / 1e-3
    assert ea_stderr((500.0, 1000.0), [0.1, 0.1]) == pytest.approx(
        BOLTZMANN_EV_K * 0.1 * math.sqrt(2) / 1e-3
    )
    # against numpy's weighted least squares covariance (unscaled)
    temps, rsd = (600.0, 750.0, 900.0), [0.8, 0.5, 0.35]
    x = 1.0 / np.array(temps)
    _, cov = np.polyfit(x, np.zeros(3) + x, 1, w=1 / np.array(rsd), cov="unscaled")
    assert ea_stderr(temps, rsd) == pytest.approx(BOLTZMANN_EV_K * math.sqrt(cov[0, 0]))


def test_the_standard_protocol_promises_a_smaller_error_than_the_quick_one():
    quick, standard = expected_ea_stderr(QUICK), expected_ea_stderr(STANDARD, 80)
    assert standard < quick / 3
    assert max(QUICK.temperatures_k) <= 900 and max(STANDARD.temperatures_k) <= 900
    assert expected_ea_stderr(QUICK, 40) < quick  # more Li, more hops, a smaller error


# ---------------------------------------------------------------- verify md options

CONFIG = """run_name: md-setup
results_dir: {root}/results
candidates:
  - kind: pymatgen
    names: [Li2O]
"""


def _config(tmp_path):
    path = tmp_path / "md.yaml"
    path.write_text(CONFIG.format(root=tmp_path))
    return str(path)


def test_verify_md_prints_its_potential_cell_and_expected_error_before_it_starts(tmp_path):
    args = ["md", _config(tmp_path), "--ids", "pymatgen:Li2O", "--potential", "chgnet"]
    result = CliRunner().invoke(app, [*args, "--cell", "relaxed", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "potential chgnet (chgnet " in result.output and "relaxed cell" in result.output
    assert f"±{expected_ea_stderr(QUICK):.3f} eV" in result.output


def test_verify_md_refuses_an_unknown_potential_or_cell_listing_the_choices(tmp_path):
    runner = CliRunner()
    base = ["md", _config(tmp_path), "--ids", "pymatgen:Li2O", "--dry-run"]
    result = runner.invoke(app, [*base, "--potential", "mace"])
    assert result.exit_code == 1 and "sevennet-0" in result.output and "chgnet" in result.output
    result = runner.invoke(app, [*base, "--cell", "measured"])
    assert result.exit_code == 1 and "experimental, relaxed" in result.output


def test_the_report_section_names_the_potential_its_version_and_the_cell():
    from miscreen.verify.md_section import results_section

    html = results_section(
        [], QUICK, None, "sevennet-0", "sevenn 0.13.0, model 7net-0", "experimental"
    )
    assert "molecular dynamics with sevennet-0" in html and "sevenn 0.13.0, model 7net-0" in html
    assert "input&#39;s lattice" in html or "input's lattice" in html
    assert "Park et al." in html
    relaxed = results_section([], QUICK, None, "chgnet", "", "relaxed")
    assert "cell relaxed with the potential" in relaxed and "Deng et al." in relaxed
