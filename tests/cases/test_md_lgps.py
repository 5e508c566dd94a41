"""The MD case's comparison with LGPS's measured numbers and its report section."""

from __future__ import annotations

import math

import pytest

from miscreen.cases.md_lgps import against_measured, case_section


def _lgps(ea: float | None, sigma: float | None) -> dict:
    return {
        "formula": "Li10Ge(PS6)2",
        "ea_ev": ea,
        "ea_stderr_ev": 0.05 if ea is not None else None,
        "sigma_300k_mS_cm": sigma,
        "sigma_300k_interval_mS_cm": [sigma / 10, sigma * 10] if sigma else None,
        "sigma_300k_upper_bound_mS_cm": None,
        "li_hops": 400,
    }


def test_a_soft_potential_is_faster_than_measured_and_says_by_how_much():
    gap = against_measured(_lgps(0.113, 686.0))  # this machine's quick-protocol run
    assert gap["ea_difference_ev"] == pytest.approx(-0.137)
    assert gap["sigma_log10_ratio"] == pytest.approx(math.log10(686 / 12))
    assert gap["md_vs_measured"] == "faster"
    assert gap["ea_within_tolerance"] is False and gap["sigma_within_tolerance"] is False


def test_within_the_targets_and_without_a_fit():
    close = against_measured(_lgps(0.30, 5.0))
    assert close["ea_within_tolerance"] and close["sigma_within_tolerance"]
    assert close["md_vs_measured"] == "slower"
    none = against_measured(_lgps(None, None))
    assert none["md_vs_measured"] == "unknown" and none["sigma_log10_ratio"] is None


def test_section_states_the_gap():
    lgps = _lgps(0.113, 686.0)
    poor = {**_lgps(None, None), "formula": "Li3PO4", "sigma_300k_upper_bound_mS_cm": 1e3}
    summary = {
        "protocol": "quick",
        "temperatures_k": [800.0, 1000.0, 1200.0],
        "runtime_s": 1641.6,
        "lgps": lgps,
        "poor": poor,
        "poor_slower_at_every_temperature": True,
        "lgps_vs_measured": against_measured(lgps),
    }
    html = case_section(summary)
    assert "<b>yes</b>" in html and "<b>faster</b> than measured" in html
    assert "1.8 decades above 12 mS/cm, Ea -0.14 eV" in html and "softening" in html


def test_case_json_keeps_its_keys_and_adds_the_potential_cell_and_temperatures():
    from miscreen.cases.md_lgps import CELL, POTENTIAL, PROTOCOL, case_summary
    from miscreen.verify.md_results import CandidateResult

    def result(cid: str) -> CandidateResult:
        return CandidateResult(cid, "X", 50, 20, "ewald", None, {}, [], None, [600.0], [])

    summary = case_summary(
        result("lgps"),
        result("poor"),
        PROTOCOL,
        POTENTIAL,
        "chgnet 0.4.2, model 0.3.0",
        CELL,
        61.0,
    )
    issue_15_keys = {
        "protocol", "low_statistics", "temperatures_k", "production_ps", "lgps", "poor",
        "poor_slower_at_every_temperature", "lgps_vs_measured", "by_temperature",
        "references", "runtime_s",
    }  # fmt: skip
    assert issue_15_keys <= set(summary)
    assert summary["potential"] == "chgnet" and summary["cell"] == "experimental"
    assert summary["temperatures_k"] == list(PROTOCOL.temperatures_k)
    assert summary["potential_version"] == "chgnet 0.4.2, model 0.3.0"
    assert 0 < summary["expected_ea_stderr_ev"] < 1
    html = case_section(summary)
    assert "LGPS, chgnet MD (this run)" in html and "experimental cell" in html
    assert "Extrapolating 600-900 K to 300 K" in html


def test_case_json_gives_the_mean_temperature_of_each_run_with_its_standard_error():
    from miscreen.cases.md_lgps import material_summary
    from miscreen.verify.md_analysis import TemperatureResult
    from miscreen.verify.md_results import CandidateResult

    def run(t: float, mean: float, se: float) -> TemperatureResult:
        d = 1e-5
        return TemperatureResult(
            t, 7.0, 351, 20, 50, d, d / 10, 1.0, 0.1, False, d, mean, 0.5, False, se
        )

    temps = [run(600.0, 589.0, 9.5), run(750.0, 752.0, 12.0)]
    lgps = CandidateResult("lgps", "X", 50, 20, "ewald", None, {}, temps, None, [], [])
    summary = material_summary(lgps)
    assert summary["mean_temperature_k"] == {"600": 589.0, "750": 752.0}
    assert summary["mean_temperature_stderr_k"] == {"600": 9.5, "750": 12.0}
