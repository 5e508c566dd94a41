"""How MD results read: sigma(300 K) with its interval or its bound and Ea with its
standard error, one text for the terminal, the report section and the MD case."""

from __future__ import annotations

from miscreen.cases.md_lgps import case_section
from miscreen.formatting import ea_text, sigma_text
from miscreen.verify.md_analysis import STATUS_ESTIMATE, STATUS_UPPER_BOUND, ArrheniusResult
from miscreen.verify.md_results import CandidateResult, summary_line


def _result(fit: ArrheniusResult | None, incomplete: tuple[float, ...] = ()) -> CandidateResult:
    return CandidateResult(
        "lgps", "Li10Ge(PS6)2", 50, 20, "ewald", None, {}, [], fit, list(incomplete), []
    )


ESTIMATE = ArrheniusResult(
    STATUS_ESTIMATE, [800.0, 1000.0, 1200.0], 0.1134, 0.0521, 1e-3, 686.2, [68.6, 6862.0], None
)
BOUND = ArrheniusResult(STATUS_UPPER_BOUND, [], None, None, None, None, None, 0.0123)


def test_sigma_and_ea_texts():
    assert sigma_text(686.2, [68.6, 6862.0]) == "686 [69, 6.9e+03]"
    assert sigma_text(686.2) == "686"
    assert sigma_text(None, None, 0.0123) == "< 0.012"
    assert sigma_text(None) == "—"
    assert ea_text(0.1134, 0.0521) == "0.113 ± 0.052"
    assert ea_text(0.1134) == "0.113" and ea_text(None) == "—"


def test_the_terminal_line_shows_the_estimate_or_the_bound_or_what_is_unfinished():
    assert summary_line(_result(ESTIMATE)).endswith(
        "σ(300 K) 686 [69, 6.9e+03] mS/cm, Ea 0.113 ± 0.052 eV, 0 Li hops"
    )
    assert "σ(300 K) < 0.012 mS/cm (upper bound; 0 Li hops)" in summary_line(_result(BOUND))
    assert "incomplete (not finished: 800, 1000 K)" in summary_line(_result(None, (800, 1000)))


def test_the_case_section_uses_the_same_texts():
    def material(fit: ArrheniusResult) -> dict:
        return {
            "formula": "Li10Ge(PS6)2",
            "ea_ev": fit.ea_ev,
            "ea_stderr_ev": fit.ea_stderr_ev,
            "sigma_300k_mS_cm": fit.sigma_300k_ms_cm,
            "sigma_300k_interval_mS_cm": fit.sigma_300k_interval_ms_cm,
            "sigma_300k_upper_bound_mS_cm": fit.sigma_300k_upper_bound_ms_cm,
            "li_hops": 400,
        }

    summary = {
        "protocol": "quick",
        "temperatures_k": [800.0, 1000.0, 1200.0],
        "runtime_s": 60.0,
        "lgps": material(ESTIMATE),
        "poor": material(BOUND),
        "poor_slower_at_every_temperature": True,
        "lgps_vs_measured": {"sigma_log10_ratio": None},
    }
    html = case_section(summary)
    assert f'<td class="num">{sigma_text(686.2, [68.6, 6862.0])}</td>' in html
    assert f'<td class="num">{ea_text(0.1134, 0.0521)}</td>' in html
    assert '<td class="num">&lt; 0.012</td>' in html
