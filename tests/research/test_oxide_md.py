"""The oxide-vs-sulfide MD study's reading rule: slower at every temperature, a bound with too
few hops against an estimate counts as slower, and a higher sigma(300 K) estimate vetoes."""

from __future__ import annotations

from tests.research import import_benchmark


def row(d: dict[str, float], bounds: tuple[str, ...] = (), sigma: float | None = 1.0) -> dict:
    return {
        "diffusivity_cm2_s": d,
        "upper_bound_k": list(bounds),
        "sigma_300k_mS_cm": sigma,
        "sigma_300k_is_upper_bound": False,
    }


SULFIDE = row({"600": 2e-6, "750": 5e-6, "900": 1e-5}, sigma=20.0)


def test_lower_diffusivity_everywhere_and_lower_sigma_is_slower():
    study = import_benchmark("research.oxide_md")
    assert study.slower(row({"600": 1e-6, "750": 2e-6, "900": 5e-6}, sigma=2.0), SULFIDE)


def test_one_faster_temperature_or_a_higher_sigma_is_not_slower():
    study = import_benchmark("research.oxide_md")
    assert study.slower(row({"600": 1e-6, "750": 6e-6, "900": 5e-6}, sigma=2.0), SULFIDE) is False
    assert study.slower(row({"600": 1e-6, "750": 2e-6, "900": 5e-6}, sigma=30.0), SULFIDE) is False


def test_too_few_hops_against_an_estimate_is_slower_even_with_a_high_bound():
    study = import_benchmark("research.oxide_md")
    bound = row({"600": 4e-6, "750": 4e-6, "900": 4e-6}, bounds=("600", "750", "900"), sigma=None)
    assert study.slower_at(bound, SULFIDE, "600")  # its bound 4e-6 lies above the sulfide's D
    assert study.slower(bound, SULFIDE)
    assert study.slower(SULFIDE, bound) is False


def test_two_bounds_decide_nothing():
    study = import_benchmark("research.oxide_md")
    a = row({"600": 4e-6, "750": 1e-6, "900": 2e-6}, bounds=("600",), sigma=1.0)
    b = row({"600": 3e-6, "750": 5e-6, "900": 6e-6}, bounds=("600",), sigma=3.0)
    assert study.slower_at(a, b, "600") is None
    assert study.slower(a, b) is None
