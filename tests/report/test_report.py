"""The HTML report of a small run: every section, figures as PNG and SVG, limited tables."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from miscreen import atomic_io
from miscreen.report import write_report

FIGURES = ("parity", "residuals_by_family", "importance", "pareto")


@pytest.fixture(scope="module")
def run_dir(small_run):
    return small_run


def test_report_has_every_section(run_dir):
    html = (run_dir / "report.html").read_text()
    for anchor in ("accuracy", "parity", "residuals", "importance", "top", "pareto"):
        assert f'id="{anchor}"' in html, anchor
    assert "Not available for this run" not in html  # importances were computed
    assert "random forest (OBELiX paper), all 121 test rows" in html
    for header in ("space group", "Li fraction", "pred. σ (mS/cm) [interval]", "supply risk"):
        assert header in html, header
    assert "Gaultois" in html and "Therrien" in html
    assert "<script src=" not in html and "<link " not in html
    assert html.count("data:image/png;base64,") == len(FIGURES)
    assert 'id="lgps"' not in html  # not a case run


def test_figures_saved_as_png_and_svg(run_dir):
    for name in FIGURES:
        png, svg = run_dir / "figures" / f"{name}.png", run_dir / "figures" / f"{name}.svg"
        assert png.read_bytes()[:4] == b"\x89PNG", name
        assert "<svg" in svg.read_text()[:2000], name


def test_importances_are_grouped_and_saved(run_dir):
    imp = atomic_io.read_table(run_dir / "feature_importance.csv")
    assert imp["feature"].is_unique and len(imp) > 10
    assert imp["feature"].str.startswith("Magpie ").sum() > 5
    assert imp["importance_mean"].is_monotonic_decreasing
    assert imp["importance_mean"].iloc[0] > 0  # shuffling the top group hurts the model


def test_top_table_and_excluded_counts(run_dir):
    html = (run_dir / "report.html").read_text()
    cands = atomic_io.read_table(run_dir / "candidates.parquet")
    ranked = cands[cands["rank"].notna()]
    top = ranked.iloc[0]
    assert f"{top['predicted_log10_sigma']:.2f} [{top['lower']:.2f}, {top['upper']:.2f}]" in html
    assert "lacks required element(s) Li" in html  # NaCl's filter, in the exclusion counts
    section = html.split('id="top"')[1].split("</table>")[0]
    assert section.count("<tr>") == 1 + 5  # header + top_k


def test_large_candidate_tables_stay_small(run_dir):
    n = 20_000
    rng = np.random.default_rng(0)
    pred = rng.normal(-5, 2, n)
    cands = pd.DataFrame(
        {
            "rank": np.arange(1, n + 1),
            "id": [f"c{i}" for i in range(n)],
            "formula": "Li3PS4",
            "predicted_log10_sigma": np.sort(pred)[::-1],
            "lower": np.sort(pred)[::-1] - 1,
            "upper": np.sort(pred)[::-1] + 1,
            "supply_risk": rng.uniform(0, 1, n),
            "e_above_hull": rng.uniform(0, 0.3, n),
            "pareto_optimal": rng.uniform(0, 1, n) < 0.001,
            "excluded_reason": "",
            "why": "x",
        }
    )
    html = write_report(
        run_name="big", metrics={}, test_predictions=None, candidates=cands,
        n_failures=0, provenance={}, top_k=25,
    )  # fmt: skip
    assert len(re.findall(r"<tr>", html)) < 60
    assert f"Top 25 candidates of {n}" in html


def test_saved_importances_are_reused_only_for_the_same_model(run_dir):
    from miscreen.catalog import RunCatalog
    from miscreen.config import Config
    from miscreen.pipeline.importances import run_importances

    run = RunCatalog(run_dir)
    path = run.importances
    original = atomic_io.read_table(path)
    manifest = atomic_io.read_json(run.manifest)
    test = atomic_io.read_table(run.test_predictions)
    data = Config().data_path
    try:
        marked = original.assign(importance_mean=123.0)
        atomic_io.write_table(marked, path)
        assert (run_importances(run, manifest, test, data)["importance_mean"] == 123.0).all()
        atomic_io.write_table(marked.assign(model_sha256="0" * 64), path)  # another model's
        redone = run_importances(run, manifest, test, data)
        assert (redone["importance_mean"] != 123.0).all()
        assert set(redone["model_sha256"]) == set(original["model_sha256"])
    finally:
        atomic_io.write_table(original, path)


def test_importances_read_the_configured_data_folder(run_dir, tmp_path, monkeypatch):
    """The wiring loads the evaluation rows from the run's data folder (``data_dir``), not
    from the default one; the report itself only reads ``feature_importance.csv``."""
    import shutil

    from miscreen.config import Config
    from miscreen.pipeline import importances

    copy = shutil.copytree(run_dir, tmp_path / "results" / run_dir.name)
    (copy / "feature_importance.csv").unlink()
    monkeypatch.delenv("MISCREEN_DATA_DIR")
    data = tmp_path / "my-data"
    cfg = Config(run_name=run_dir.name, results_dir=tmp_path / "results", data_dir=data)
    folders = []
    real = importances.load_obelix

    def spy(*args, **kwargs):
        folders.append(kwargs.get("data_dir"))
        return real(*args, **kwargs)

    monkeypatch.setattr(importances, "load_obelix", spy)
    table = importances.importance_stage(cfg)
    assert folders == [data]
    assert table is not None and (copy / "feature_importance.csv").is_file()
    assert atomic_io.read_table(copy / "feature_importance.csv")["feature"].tolist() == list(
        table["feature"]
    )


def test_report_imports_no_training_featurizing_or_fetching_code():
    import subprocess
    import sys

    code = (
        "import sys, miscreen.report; "
        "print(sorted(m for m in sys.modules if m.startswith(('miscreen.train', "
        "'miscreen.featurize', 'miscreen.fetch'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_summary_states_the_filter_values():
    """The opening paragraph names each filter with its threshold (not "# > #")."""
    from miscreen.report import summary_text
    from miscreen.screen import Filters, exclusion_reason

    filters = Filters(max_e_above_hull=0.05, max_sites=200, min_li_fraction=0.2)
    rows = [
        {"composition": "Li3PS4", "e_above_hull": 0.123, "li_fraction": 0.4, "nsites": 16},
        {"composition": "Li3PS4", "e_above_hull": 0.2, "li_fraction": 0.4, "nsites": 16},
        {"composition": "Li3PS4", "e_above_hull": 0.0, "li_fraction": 0.4, "nsites": 250},
        {"composition": "LiAlSiO4", "e_above_hull": 0.0, "li_fraction": 0.1, "nsites": 28},
        {"composition": "Li3PS4", "e_above_hull": 0.0, "li_fraction": 0.4, "nsites": 16},
    ]
    reasons = [exclusion_reason(r, filters) for r in rows]
    candidates = pd.DataFrame({"rank": [None, None, None, None, 1.0], "excluded_reason": reasons})
    summary = summary_text(candidates, {}, {})
    assert "4 were left out: 2 e_above_hull > 0.05 eV/atom (source); " in summary
    assert "1 sites > max_sites 200" in summary
    assert "1 Li fraction < min_li_fraction 0.2" in summary
    assert "#" not in summary and "0.123" not in summary


def test_report_reads_without_a_guide(run_dir):
    """A first paragraph in plain words, conductivity in mS/cm, folded reasons, links to the
    sources, and row counts in their own column."""
    html = (run_dir / "report.html").read_text()
    candidates = pd.read_csv(run_dir / "candidates.csv")
    ranked = candidates.dropna(subset=["rank"])
    summary = html.split('id="summary"')[1].split("</p>")[0]
    assert f"screened {len(candidates):,} candidate structures" in summary
    assert f"ranked {len(ranked):,}" in summary and "decades" in summary
    first = ranked.iloc[0]
    assert f"{1e3 * 10 ** first['predicted_log10_sigma']:.2g} [" in html  # mS/cm
    assert html.count("<details>") == min(5, len(ranked))  # top_k is 5 in the small run
    doi_rows = ranked.head(5).dropna(subset=["doi"])
    for doi in doi_rows["doi"]:
        assert f'href="https://doi.org/{doi}"' in html
    metrics = html.split('id="accuracy"')[1].split("</table>")[0]
    assert ">test_n<" not in metrics and ">test_n_cif_subset<" not in metrics
    assert re.search(
        r">test_mae_cif_subset</td><td class=\"num\">[\d.]+</td>\s*<td class=\"num\">\d+<", metrics
    )


def test_links_point_to_materials_project_or_the_publication():
    from miscreen.report import source_url

    assert source_url({"id": "mp-2341"}).endswith("/materials/mp-2341")
    assert source_url({"id": "abc", "doi": "10.1021/x"}) == "https://doi.org/10.1021/x"
    assert source_url({"id": "mbd-12", "doi": None}) == ""


def test_reasons_of_the_electrolyte_filters_fold_into_one_kind_each():
    from miscreen.report import reason_kind

    assert reason_kind("redox-active transition metals Co, Fe (changes ...)") == reason_kind(
        "redox-active transition metal Ti (changes ...)"
    )
    estimate = "band_gap 0.20 +- 0.20 eV (composition_model): P(gap >= 1.0 eV) = 0.00 < 0.1"
    assert reason_kind(estimate).startswith("band_gap estimate surely below the minimum")
    assert reason_kind("band_gap 0.48 < 1.0 eV (source)") == "band_gap < 1.0 eV (source)"
    matched = "e_above_hull 0.120 > 0.05 eV/atom (matched:mp-1234)"
    assert reason_kind(matched) == "e_above_hull > 0.05 eV/atom (matched)"


def test_the_top_table_gives_each_estimate_with_its_method():
    from miscreen.report import top_table

    candidates = pd.DataFrame(
        {
            "rank": [1.0, 2.0],
            "id": ["a", "b"],
            "source": ["s", "s"],
            "formula": ["Li3PS4", "Li2S"],
            "predicted_log10_sigma": [-3.0, -4.0],
            "lower": [-4.0, -5.0],
            "upper": [-2.0, -3.0],
            "p_fast": [0.8, 0.3],
            "e_above_hull": [0.0, float("nan")],
            "stability_method": ["chgnet_hull", "not estimated: below the best 30"],
            "band_gap": [2.5, 3.4],
            "band_gap_method": ["composition_n_model", "source"],
            "bvse_e3d_ev": [0.35, float("nan")],
            "bvse_method": ["ordered", "none: BVSE failed: no parameters"],
        }
    )
    a, b = top_table(candidates, 2)
    assert a["p_fast"] == "0.80" and a["e_above_hull"] == "0.000 (chgnet_hull)"
    assert a["band_gap"] == "2.50 (composition_n_model)" and a["bvse_e3d_ev"] == "0.35 (ordered)"
    assert b["e_above_hull"] == "not estimated: below the best 30"
    assert b["bvse_e3d_ev"] == "none: BVSE failed: no parameters"
