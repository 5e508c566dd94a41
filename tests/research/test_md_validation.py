"""The MD validation set (``benchmarks/md_validation.py``): a tiny run (two materials, one
potential, a few steps) writes the JSON the issue asks for, here and as SLURM arrays on a
real cluster, and the statistics are right on known numbers."""

from __future__ import annotations

import json
import math
import re

import pytest
from scipy.stats import spearmanr

from tests.research import import_benchmark


@pytest.fixture(scope="module")
def bench():
    return import_benchmark("md_validation")


def _row(computed, measured, bound=None) -> dict:
    return {
        "computed_log10_sigma_S_cm": computed,
        "computed_log10_upper_bound_S_cm": bound,
        "measured_log10_sigma_S_cm": measured,
    }


def test_statistics_on_known_numbers(bench):
    rows = {
        "a": _row(-1.0, -2.0),  # +1 decade
        "b": _row(-4.0, -3.5),  # -0.5
        "c": _row(-3.0, -6.0),  # +3
        "d": _row(None, -12.0, bound=-5.0),  # only a bound: ranked at it, no signed error
    }
    stats = bench.statistics(rows)
    assert stats["mean_signed_error_decades"] == pytest.approx((1.0 - 0.5 + 3.0) / 3)
    assert stats["n_estimates"] == 3 and stats["n_ranked"] == 4
    # computed order a > c > b > d, measured a > b > c > d: one swapped pair of four
    expected = spearmanr([-1.0, -4.0, -3.0, -5.0], [-2.0, -3.5, -6.0, -12.0]).statistic
    assert stats["spearman_log_sigma"] == pytest.approx(expected) == pytest.approx(0.8)
    assert bench.statistics({"a": _row(None, -2.0)})["spearman_log_sigma"] is None


def test_the_set_spans_four_decades_in_small_cells(bench):
    assert len(bench.MATERIALS) >= 5 and "lgps" in bench.MATERIALS
    truth = bench.measured(list(bench.MATERIALS))
    assert max(truth.values()) - min(truth.values()) >= 4
    assert truth["lgps"] == pytest.approx(math.log10(0.012))


def test_a_tiny_run_writes_every_number_per_material_and_potential(bench, tmp_path):
    out = tmp_path / "md_validation.json"
    args = ["--materials", "lgps,li3n", "--potentials", "chgnet", "--steps-scale", "0.005"]
    bench.main([*args, "--jobs", "1", "--results-dir", str(tmp_path), "--out", str(out)])
    doc = json.loads(out.read_text())
    assert doc["protocol"]["name"] == "quick-x0.005" and doc["cell"] == "experimental"
    assert set(doc["potentials"]) == {"chgnet"}
    chgnet = doc["potentials"]["chgnet"]
    assert set(chgnet["materials"]) == {"lgps", "li3n"}
    for row in chgnet["materials"].values():
        for key in ("ea_ev", "ea_stderr_ev", "sigma_300k_mS_cm", "li_hops", "measured_sigma_mS_cm"):
            assert key in row
        assert row["cell"] == "experimental" and row["potential_version"].startswith("chgnet ")
        assert row["incomplete_temperatures_k"] == []  # every task ran to its (few) steps
    for key in ("spearman_log_sigma", "mean_signed_error_decades"):
        assert key in chgnet
    # the run folder holds one potential: a second tiny run resumes it (nothing to run)
    bench.main([*args, "--jobs", "1", "--results-dir", str(tmp_path), "--out", str(out)])
    assert json.loads(out.read_text())["potentials"]["chgnet"]["materials"].keys() == {
        "lgps",
        "li3n",
    }
    # a run on one material adds to the file (statistics over both), never replaces it
    one = ["--materials", "li3n", "--potentials", "chgnet", "--steps-scale", "0.005"]
    bench.main([*one, "--jobs", "1", "--results-dir", str(tmp_path), "--out", str(out)])
    merged = json.loads(out.read_text())
    assert merged["potentials"]["chgnet"]["materials"] == chgnet["materials"]
    assert merged["potentials"]["chgnet"]["n_ranked"] == chgnet["n_ranked"]
    assert set(merged["materials"]) == {"lgps", "li3n"}
    # a file of another protocol is refused before anything runs, naming it
    other = [*one[:-1], "0.004", "--results-dir", str(tmp_path), "--out", str(out)]
    with pytest.raises(SystemExit, match=r"another protocol \(quick-x0\.005\)"):
        bench.main(other)
    assert not (tmp_path / "md-validation-chgnet-quick-x0.004").exists()
    out.write_text("{not json")  # a damaged file is named, not overwritten
    with pytest.raises(SystemExit, match=f"{out} is not valid JSON"):
        bench.main(other)
    assert out.read_text() == "{not json"


SUBMITTED = re.compile(r"^(\S+): submitted array (\d+) \((\d+) tasks\), analysis (\d+);", re.M)


def test_slurm_runs_an_array_per_potential_then_a_plain_run_collects(
    bench, slurm, tmp_path, capsys
):
    """``--slurm`` on the real single-node cluster (``tests/batch/slurm_cluster.py``): one MD
    array (a task per temperature) and its analysis job per potential, through ``verify md``'s
    SLURM path; run again without ``--slurm``, the script collects what the jobs computed and
    runs no MD step itself."""
    from miscreen.potentials import POTENTIALS

    out = tmp_path / "md_validation.json"
    args = ["--materials", "li3n", "--potentials", "chgnet,chgnet-r2scan", "--steps-scale", "0.004"]
    args += ["--results-dir", str(tmp_path), "--out", str(out)]
    assert bench.main([*args, "--slurm"]) is None
    submitted = SUBMITTED.findall(capsys.readouterr().out)
    assert [(s[0], s[2]) for s in submitted] == [("chgnet", "3"), ("chgnet-r2scan", "3")]
    assert not out.exists()  # submitting writes no results
    jobs = slurm.wait(*(i for s in submitted for i in (s[1], s[3])), timeout=600)
    states = {r["JobState"] for records in jobs.values() for r in records}
    assert states == {"COMPLETED"}, f"{jobs}\n{slurm.logs()}"
    written = {}
    for potential in ("chgnet", "chgnet-r2scan"):
        run = tmp_path / f"md-validation-{potential}-quick-x0.004"
        array = (run / "slurm" / "md-array.sh").read_text()
        assert "#SBATCH --array=0-2" in array and "verify md-task" in array
        tasks = [json.loads(t.read_text()) for t in (run / "md").glob("*/*K/task.json")]
        assert [(t["potential"], t["cell"]) for t in tasks] == [(potential, "experimental")] * 3
        written |= {f: f.stat().st_mtime_ns for f in (run / "md").glob("*/*K/*")}
    assert sum(f.name.startswith("frames-") for f in written) == 6  # the jobs' trajectories
    doc = bench.main(args)
    for potential in ("chgnet", "chgnet-r2scan"):
        row = doc["potentials"][potential]["materials"]["li3n"]
        assert row["potential_version"] == POTENTIALS[potential].version  # the jobs' potential
        assert row["li_hops"] is not None and row["incomplete_temperatures_k"] == []
    assert json.loads(out.read_text()) == json.loads(json.dumps(doc))
    # the jobs did the MD: collecting it rewrote none of their tasks' files
    assert {f: f.stat().st_mtime_ns for f in written} == written
