"""Diffusion analysis: known answers on synthetic trajectories (random walks whose
diffusivity is known analytically), hops and upper bounds, the Arrhenius fit with its
interval, and the tables and report section of a run folder."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure
from scipy import constants as C

from miscreen.config import load_config
from miscreen.pipeline.verification import analyze_md, read_md_results
from miscreen.verify.md_analysis import (
    STATUS_ESTIMATE,
    STATUS_UPPER_BOUND,
    TemperatureResult,
    analyze_trajectory,
    arrhenius,
    count_hops,
    mean_temperature,
)
from miscreen.verify.md_cell import Prepared
from miscreen.verify.md_protocol import MDProtocol
from miscreen.verify.md_relax import Relaxed
from miscreen.verify.md_run import Plan, candidate_folder, temperature_folder
from miscreen.verify.md_tasks import (
    CHECKPOINT_JSON,
    PREPARED_JSON,
    MDTask,
    write_chunk,
    write_prepared,
    write_relaxed,
    write_task,
)

KB_EV = C.k / C.e
N_LI, N_O, BOX = 120, 8, 12.0
DT_FS, SKIP = 2.0, 10  # a frame every 20 fs


def cell(seed: int = 0, n_li: int = N_LI, box: float = BOX) -> Structure:
    rng = np.random.default_rng(seed)
    coords = rng.uniform(0, box, (n_li + N_O, 3))
    return Structure(
        Lattice.cubic(box), ["Li"] * n_li + ["O"] * N_O, coords, coords_are_cartesian=True
    )


def random_walk(structure: Structure, d_cm2_s: float, frames: int, seed: int = 1) -> np.ndarray:
    """Li random walk with <dr^2> = 6 D t (Gaussian steps of variance 2 D dt per axis);
    the oxygen framework stays put. -> unwrapped positions [frame, atom, xyz]."""
    rng = np.random.default_rng(seed)
    n_li = int(structure.composition["Li"])
    var = 2 * d_cm2_s * 10.0 * DT_FS * SKIP  # cm^2/s -> A^2/fs, times the frame interval
    pos = np.repeat(structure.cart_coords[None], frames, axis=0)
    steps = rng.normal(0.0, math.sqrt(var), (frames - 1, n_li, 3))
    pos[1:, :n_li] += np.cumsum(steps, axis=0)
    return pos


def test_random_walk_diffusivity_and_nernst_einstein_conductivity():
    """500 walkers for 6 ps: the fitted D scatters by ~2.5 % between seeds (measured over
    eight seeds), so 10 % is a four-sigma check of D = <dr^2> / (6 t)."""
    s, d_true, temp = cell(n_li=500, box=16.0), 1e-5, 1000.0
    result, _ = analyze_trajectory(s, random_walk(s, d_true, 301), temp, DT_FS, SKIP)
    assert result.diffusivity_cm2_s == pytest.approx(d_true, rel=0.1)
    # sigma = n e^2 D / (kB T), n the Li density: the analytic Nernst-Einstein value
    n = 500 / (16.0 * 1e-8) ** 3
    sigma_ms_cm = 1e3 * n * C.e**2 * result.diffusivity_cm2_s / (C.k * temp)
    assert result.conductivity_ms_cm == pytest.approx(sigma_ms_cm, rel=1e-6)
    assert not result.upper_bound and result.li_hops >= 100
    assert result.production_ps == pytest.approx(6.0) and result.framework_max_disp_a == 0.0


def test_hops_are_counted_once_per_move_between_sites():
    t = np.arange(400)
    disp = np.zeros((2, 400, 3))
    disp[0, 100:, 0] = 2.5  # one jump of 2.5 A, then back after 300 frames
    disp[0, 300:, 0] = 0.0
    disp[1] = 0.3 * np.sin(t / 3.0)[:, None]  # vibration only
    np.testing.assert_array_equal(count_hops(disp, 20.0), [2, 0])


def test_too_few_hops_give_an_upper_bound_not_a_value():
    s = cell()
    rng = np.random.default_rng(3)
    pos = np.repeat(s.cart_coords[None], 301, axis=0)
    pos[:, :N_LI] += rng.normal(0.0, 0.15, (301, N_LI, 3))  # rattling in place
    result, _ = analyze_trajectory(s, pos, 800.0, DT_FS, SKIP, min_hops=10)
    assert result.li_hops < 10 and result.upper_bound
    assert result.diffusivity_bound_cm2_s >= result.diffusivity_cm2_s
    fit = arrhenius([result, *[_synthetic(t, 0.3) for t in (1000.0,)]], s)
    assert fit.status == STATUS_UPPER_BOUND and fit.sigma_300k_ms_cm is None
    assert fit.sigma_300k_upper_bound_ms_cm > 0 and "too few Li hops at 800 K" in fit.notes[0]


def test_the_mean_temperature_comes_with_its_standard_error():
    """Frames every 20 fs whose temperature swings by 70 K around 600 K with a 200 fs
    correlation time (an AR(1) series, like a 50-atom cell under a 100 fs thermostat): over
    400 runs of 7 ps the means scatter as the analytic standard error of an AR(1) mean says
    (16.5 K), and the seven-block estimate of one run finds it, ~15 % low (neighbouring 1 ps
    blocks are not quite independent); the trajectory's result records both."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(5)
    runs, n, r, sigma = 400, 350, math.exp(-20 / 200), 70.0
    kicks = rng.normal(0, sigma * math.sqrt(1 - r * r), (runs, n))
    kicks[:, 0] = rng.normal(0, sigma, runs)  # start in the stationary distribution
    series = 600.0 + lfilter([1.0], [1.0, -r], kicks, axis=1)
    means, ses = np.array([mean_temperature(x) for x in series]).T
    var_n = (1 + r) / (1 - r) - 2 * r * (1 - r**n) / (n * (1 - r) ** 2)
    analytic = sigma * math.sqrt(var_n / n)
    assert np.std(means) == pytest.approx(analytic, rel=0.12)  # 400 runs: 3.5 % scatter
    assert np.median(ses) == pytest.approx(0.85 * analytic, rel=0.12)
    assert math.isnan(mean_temperature(np.full(10, 600.0))[1])  # too few frames for blocks
    assert math.isnan(mean_temperature(None)[0])  # no frames
    s = cell()
    pos = np.repeat(s.cart_coords[None], 301, axis=0)
    temps = 600.0 + np.tile([-10.0, 10.0], 151)[:301]
    result, _ = analyze_trajectory(s, pos, 600.0, DT_FS, SKIP, temperatures_k=temps)
    assert result.mean_temperature_k == pytest.approx(np.mean(temps))
    assert 0 <= result.mean_temperature_stderr_k < 1.0
    assert TemperatureResult.from_dict(result.to_dict()) == result


def _synthetic(temp: float, ea: float, d0: float = 1e-2, noise: float = 1.0) -> TemperatureResult:
    d = d0 * math.exp(-ea / (KB_EV * temp)) * noise
    return TemperatureResult(
        temp, 5.0, 251, N_LI, 100, d, 0.05 * d, 0.0, 0.0, False, d, temp, 0.5, False
    )


def test_arrhenius_is_fitted_at_the_mean_temperature_each_run_had():
    """Runs whose thermostat noise left them 5 % cold, 2 % cold and 1.5 % hot (the seeded
    kicks of md-lgps at 600/750/900 K) diffuse at those temperatures: fitted there, Ea comes
    back exactly; fitted at the targets it would come out 0.05 eV too high (0.30 eV)."""
    s, ea, d0 = cell(), 0.25, 1e-2
    runs = []
    for target, mean in ((600.0, 567.3), (750.0, 733.3), (900.0, 912.9)):
        d = d0 * math.exp(-ea / (KB_EV * mean))
        runs.append(
            TemperatureResult(
                target, 7.0, 351, N_LI, 100, d, 0.05 * d, 0.0, 0.0, False, d, mean, 0.5, False
            )
        )
    fit = arrhenius(runs, s)
    assert fit.ea_ev == pytest.approx(ea, rel=1e-6)
    assert fit.temperatures_fit_k == [600.0, 750.0, 900.0]  # the runs, named by their target
    no_record = [TemperatureResult.from_dict({**r.to_dict(), "mean_temperature_k": math.nan})
                 for r in runs]  # fmt: skip
    assert arrhenius(no_record, s).ea_ev > ea + 0.04  # older results: fitted at the targets
    from miscreen.verify.md_section import arrhenius_figure

    fig = arrhenius_figure("test", runs, fit)  # the report's figure shows the same fit
    assert [t.get_text() for t in fig.axes[0].texts] == ["E$_a$ = 0.25 eV"]  # at targets: 0.30


def test_arrhenius_fit_recovers_ea_and_its_interval_covers_the_truth():
    s, ea = cell(), 0.25
    noise = (1.05, 0.93, 1.04, 0.97, 1.02)
    temps = [
        _synthetic(t, ea, noise=f) for t, f in zip((600, 700, 800, 900, 1000), noise, strict=True)
    ]
    fit = arrhenius(temps, s)
    assert fit.status == STATUS_ESTIMATE and fit.ea_ev == pytest.approx(ea, abs=0.02)
    assert 0 < fit.ea_stderr_ev < 0.02
    from pymatgen.analysis.diffusion.analyzer import get_conversion_factor

    truth = 1e-2 * math.exp(-ea / (KB_EV * 300)) * get_conversion_factor(s, "Li", 300)
    lo, hi = fit.sigma_300k_interval_ms_cm
    assert lo < fit.sigma_300k_ms_cm < hi and lo < truth < hi
    two = arrhenius(temps[:2], s)  # no error estimate from two points
    assert two.ea_stderr_ev is None and two.sigma_300k_interval_ms_cm is None


def _write_task(root, cid: str, structure: Structure, temp: float, d: float, seed: int):
    """A finished task folder holding a synthetic random walk, as run_md_task leaves it."""
    proto = MDProtocol("synthetic", (800.0, 1000.0, 1200.0), 1.0, 5.0, checkpoint_every=250)
    cdir = root / candidate_folder(cid)
    if not (cdir / PREPARED_JSON).exists():
        prepared = Prepared(
            cid,
            structure.composition.reduced_formula,
            structure,
            "ordered",
            {},
            0.0,
            (1, 1, 1),
            "test",
            (-2.0, -2.5, -1.5),
        )
        write_prepared(cdir, prepared)
        write_relaxed(cdir, Relaxed(structure, -4.0, 0.01, 10, True))
    tdir = cdir / temperature_folder(temp)
    write_task(tdir, MDTask(cid, temp, proto))
    frames = proto.total_steps // proto.save_every
    pos = random_walk(structure, d, frames + 1, seed)[1:]
    steps = np.arange(1, frames + 1) * proto.save_every
    write_chunk(
        tdir, proto.total_steps, [(st, p, temp, -1.0) for st, p in zip(steps, pos, strict=True)]
    )
    (tdir / CHECKPOINT_JSON).write_text(json.dumps({"step": proto.total_steps}))
    return proto


def test_a_run_folder_is_analysed_into_tables_and_a_report_section(tmp_path):
    config = tmp_path / "md.yaml"
    config.write_text(f"run_name: run\nresults_dir: {tmp_path}\n")
    cfg = load_config(config)
    run = cfg.run
    s = cell()
    tasks = []
    for i, (cid, ea) in enumerate((("fast:1", 0.2), ("slow", 0.9))):
        for j, t in enumerate((800.0, 1000.0, 1200.0)):
            d = 1e-2 * math.exp(-ea / (KB_EV * t))
            proto = _write_task(run.md, cid, s, t, d, seed=10 * i + j)
            tasks.append(f"{candidate_folder(cid)}/{temperature_folder(t)}")
    plan = Plan(proto, 0, [candidate_folder("fast:1"), "slow"], tasks)
    run.md_plan.write_text(json.dumps(plan.to_dict()))

    results = {r.id: r for r in analyze_md(cfg)}
    fast, slow = results["fast:1"], results["slow"]
    assert fast.arrhenius.status == STATUS_ESTIMATE
    assert fast.arrhenius.ea_ev == pytest.approx(0.2, abs=0.05)
    assert slow.arrhenius.status == STATUS_UPPER_BOUND  # ~no hops at any temperature
    summary = pd.read_csv(run.md_summary)
    assert list(summary["id"]) == ["fast:1", "slow"]
    assert summary.loc[0, "md_sigma_300k_lower_ms_cm"] < summary.loc[0, "md_sigma_300k_ms_cm"]
    assert summary.loc[1, "md_status"] == "upper bound"
    assert len(pd.read_csv(run.md_temperatures)) == 6
    html = run.read_sections()[0]
    assert (run.sections / "65-md.html").exists() and html.count("data:image/png;base64,") == 4
    assert "&lt; " in html and "Low statistics" not in html  # the synthetic protocol is not
    assert read_md_results(cfg)[0].temperatures[0].msd_a2  # MSD curves kept for the report
    assert json.loads(run.manifest.read_text())["stages"]["verify-md"]["tasks"] == 6
