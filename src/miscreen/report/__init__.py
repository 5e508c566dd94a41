"""A self-contained HTML report per run (figures embedded as PNG data URIs, and also saved
as PNG and SVG under ``<run>/figures/``). Tables are limited (top-k, counts), so large runs
render quickly; the full lists stay in ``candidates.parquet``."""

from __future__ import annotations

import math
from pathlib import Path

import jinja2
import pandas as pd

from miscreen import store
from miscreen.report.figures import (
    case_rank_figure,
    importance_figure,
    pareto_figure,
    parity_figure,
    residuals_by_family,
    save_figure,
)
from miscreen.report.importance import run_importances

__all__ = ["build_report", "parity_figure", "write_report"]

PUBLISHED_BASELINES = {
    "random forest (OBELiX paper), all 121 test rows": 1.54,
    "random forest (OBELiX paper), 67 test rows with CIFs": 1.82,
    "predicting the median": 2.16,
    "experimental repeat noise": 0.41,
}

CITATIONS = [
    "F. Therrien et al., OBELiX: A Curated Dataset of Crystal Structures and Experimentally "
    "Measured Ionic Conductivities for Lithium Solid-State Electrolytes, Digital Discovery "
    "(2026), arXiv:2502.14234. Data CC BY 4.0.",
    "A. Jain et al., The Materials Project, APL Materials 1, 011002 (2013). Data CC BY 4.0.",
    "L. Ward et al., Matminer: an open source toolkit for materials data mining, "
    "Comput. Mater. Sci. 152, 60 (2018).",
    "S. P. Ong et al., pymatgen, Comput. Mater. Sci. 68, 314 (2013).",
    "M. W. Gaultois et al., Data-driven review of thermoelectric materials: performance and "
    "resource considerations, Chem. Mater. 25, 2911 (2013) (element HHI supply-risk data).",
    "Element prices: pymatgen's costdb_elements.csv (Wolfram Alpha / Wikipedia, 2013).",
]
KAMAYA = "N. Kamaya et al., A lithium superionic conductor, Nat. Mater. 10, 682 (2011)."

TOP_COLUMNS = {
    "rank": "rank",
    "formula": "formula",
    "spacegroup_number": "space group",
    "li_fraction": "Li fraction",
    "sigma": "pred. log10 σ [interval]",
    "e_above_hull": "E_hull (eV/atom)",
    "supply_risk": "supply risk",
    "cost_usd_per_kg": "cost (USD/kg)",
    "id": "id",
    "source": "source",
    "why": "why",
}

TEMPLATE = jinja2.Environment(autoescape=True).from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>miscreen run {{ run_name }}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:0.85em;margin:1em 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3} .num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%} .note{color:#555;font-size:0.9em} .why{font-size:0.85em;color:#444}
</style></head><body>
<h1>miscreen — run <code>{{ run_name }}</code></h1>
<p class="note">Created {{ created_at }} · git {{ git_commit or "unknown" }} · config
<code>{{ config_path }}</code>. Target: log10 of room-temperature ionic conductivity (S/cm).</p>

<h2 id="accuracy">Model accuracy</h2>
<p class="note">Evaluation set: {{ evaluation_set }}.</p>
<table><tr><th>metric</th><th>value</th><th>rows</th></tr>
{% for name, value, n in metric_rows %}<tr><td>{{ name }}</td><td class="num">{{ value }}</td>
<td class="num">{{ n }}</td></tr>{% endfor %}</table>
<table><tr><th>published baseline (OBELiX official test split, MAE log10 S/cm)</th>
<th>value</th></tr>
{% for name, value in baselines.items() %}<tr><td>{{ name }}</td>
<td class="num">{{ value }}</td></tr>{% endfor %}</table>
{% if figs.parity %}<h3 id="parity">Parity plot with intervals</h3>
<img alt="parity plot" src="data:image/png;base64,{{ figs.parity }}">{% endif %}
{% if figs.residuals %}<h3 id="residuals">Residuals by family</h3>
<img alt="residuals by family" src="data:image/png;base64,{{ figs.residuals }}">{% endif %}

<h2 id="importance">Permutation feature importances</h2>
{% if importances is not none %}<p class="note">Composition model, on the {{ imp_rows }}
evaluation rows: increase in MAE when a feature group (e.g. all statistics of one
Magpie property) is shuffled (3 repeats).</p>
<img alt="permutation importances" src="data:image/png;base64,{{ figs.importance }}">
{% else %}<p class="note">Not available for this run: {{ imp_reason }}</p>{% endif %}

<h2 id="top">Top {{ top|length }} candidates of {{ n_candidates }} ({{ n_ranked }} ranked)</h2>
<table><tr>{% for c in top_columns.values() %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in top %}<tr>{% for c in top_columns %}<td{% if c == "why" %} class="why"{% endif %}>
{{ row[c] }}</td>{% endfor %}</tr>{% endfor %}</table>
<p class="note">Score: {{ score_note }}. Supply risk: weight-fraction mean of the elements'
production Herfindahl–Hirschman index / 10,000 (Gaultois et al. 2013); cost: raw-element
USD/kg (2013). {{ n_failures }} input rows could not be used: see <code>failures.csv</code>.
Full lists: <code>candidates.csv</code> / <code>candidates.parquet</code>.</p>
<h3>Why rows were excluded</h3>
<table><tr><th>filter</th><th>rows</th></tr>
{% for reason, n in excluded %}<tr><td>{{ reason }}</td><td class="num">{{ n }}</td></tr>
{% else %}<tr><td>none excluded</td><td></td></tr>{% endfor %}</table>

<h2 id="pareto">Pareto front: conductivity, stability, supply risk</h2>
<img alt="Pareto plot" src="data:image/png;base64,{{ figs.pareto }}">
<p class="note">{{ n_pareto }} ranked candidates are Pareto-optimal (no other candidate is at
least as good on predicted σ, energy above hull and supply risk, and better on one; unknown
energy above hull counts as worst).</p>

{% if case %}<h2 id="lgps">Case study: rediscovering Li10GeP2S12</h2>
<p>The model was trained on OBELiX with every LGPS-family entry held out
({{ case.standard.training_rows }} training rows, {{ case.standard.heldout_rows }} held out).
It then screened {{ case.pool_size }} deduplicated Li structures ({{
case.pool_duplicates_removed }} cross-source duplicates removed): Materials Project 2018 and
matbench-dielectric snapshots, the held-out LGPS-family entries with CIFs and pymatgen's
Li10GeP2S12 cell. Measured: log10 σ = {{ "%.2f"|format(case.measured_log10_sigma) }}
(12 mS/cm; {{ kamaya }})</p>
<table><tr><th>hold-out</th><th>LGPS rank</th><th>percentile</th><th>pred. log10 σ</th>
<th>interval</th><th>covers measured</th><th>Si analogue ranks</th><th>Sn analogue ranks</th>
<th>held-out MAE</th></tr>
{% for name, v in [("standard (LGPS family)", case.standard),
                   ("strict (+ Ge–P–S thio-LISICON)", case.strict)] %}
<tr><td>{{ name }}</td><td class="num">{{ v.lgps.rank }} / {{ case.pool_ranked }}</td>
<td class="num">{{ v.lgps.percentile }} %</td>
<td class="num">{{ fmt(v.lgps.pred_log10_sigma) }}</td>
<td class="num">[{{ fmt(v.lgps.interval[0]) }}, {{ fmt(v.lgps.interval[1]) }}]</td>
<td>{{ v.lgps_covers_measured }}</td>
<td>{{ ranks(v.analogues.Si) }}</td><td>{{ ranks(v.analogues.Sn) }}</td>
<td class="num">{{ fmt(v.metrics.test_mae) }}</td></tr>{% endfor %}</table>
<p>Held-out LGPS-family entries with CIFs in the pool (standard hold-out), by rank:
{% for r in case.standard.heldout_family_in_pool %}{{ r.formula }} #{{ r.rank }}{% if not loop.last
%}, {% endif %}{% endfor %}.</p>
<p class="note">The strict hold-out removed {{ case.strict.heldout_rows - case.standard.heldout_rows
}} more training rows, {{ case.strict.heldout_rows_with_structure -
case.standard.heldout_rows_with_structure }} of them with a CIF. Both models train on every
labelled row (rows without a CIF have no position-based descriptors), so both change between
the hold-outs.</p>
<img alt="LGPS in the pool" src="data:image/png;base64,{{ figs.case_standard }}">
<img alt="LGPS in the pool, strict" src="data:image/png;base64,{{ figs.case_strict }}">
{% for name, v in [("standard", case.standard), ("strict", case.strict)] %}
<h3>Top 20 under the {{ name }} hold-out</h3>
<table><tr><th>rank</th><th>formula</th><th>id</th><th>source</th><th>why</th></tr>
{% for r in v.top20 %}<tr><td class="num">{{ r.rank }}</td><td>{{ r.formula }}</td>
<td>{{ r.id }}</td><td>{{ r.source }}</td><td class="why">{{ r.why }}</td></tr>{% endfor %}
</table>{% endfor %}
<p class="note">Numbers as produced; nothing was tuned on the LGPS result (model settings
come from cross-validation on training data). Full numbers: <code>case.json</code>.</p>
{% endif %}

<h2 id="citations">Data and citations</h2><ul>{% for c in citations %}<li>{{ c }}</li>
{% endfor %}</ul>
</body></html>
"""
)


def _fmt(value: object, digits: int = 2) -> str:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "—"
    return "—" if math.isnan(v) else f"{v:.{digits}f}"


def _ranks(rows: list[dict]) -> str:
    return ", ".join(str(r.get("rank")) for r in rows) if rows else "not in pool"


def metric_rows(metrics: dict) -> list[tuple[str, object, object]]:
    """(name, formatted value, row count) for every scalar metric."""
    return [
        (k, f"{v:.3f}" if isinstance(v, float) else v, metrics.get(_count_key(k), ""))
        for k, v in metrics.items()
        if not k.endswith("_n") and isinstance(v, int | float) and not isinstance(v, bool)
    ]


def top_table(candidates: pd.DataFrame, top_k: int) -> list[dict]:
    """The first ``top_k`` ranked rows, formatted for the report."""
    top = candidates[candidates["rank"].notna()].head(top_k).copy()
    top["sigma"] = [
        f"{_fmt(p)} [{_fmt(lo)}, {_fmt(hi)}]"
        for p, lo, hi in zip(top["predicted_log10_sigma"], top["lower"], top["upper"], strict=True)
    ]
    for col, digits in (("li_fraction", 2), ("e_above_hull", 3), ("supply_risk", 2)):
        top[col] = top[col].map(lambda v, d=digits: _fmt(v, d)) if col in top else "—"
    if "cost_usd_per_kg" in top:
        top["cost_usd_per_kg"] = top["cost_usd_per_kg"].map(lambda v: _fmt(v, 0))
    if "spacegroup_number" in top:
        top["spacegroup_number"] = top["spacegroup_number"].map(lambda v: _fmt(v, 0))
    for col in TOP_COLUMNS:
        if col not in top:
            top[col] = "—"
    return top.to_dict("records")


def excluded_counts(candidates: pd.DataFrame, limit: int = 15) -> list[tuple[str, int]]:
    """How many rows each filter removed (filters with numbers grouped by their kind)."""
    reasons = candidates.get("excluded_reason", pd.Series(dtype=str)).fillna("")
    reasons = reasons[reasons != ""].str.replace(r"[-\d.]+", "#", regex=True)
    return [(str(k), int(v)) for k, v in reasons.value_counts().head(limit).items()]


def write_report(
    *,
    run_name: str,
    metrics: dict,
    test_predictions: pd.DataFrame | None,
    candidates: pd.DataFrame,
    n_failures: int,
    provenance: dict,
    top_k: int = 25,
    importances: pd.DataFrame | None = None,
    case: dict | None = None,
    case_ranked: dict[str, pd.DataFrame] | None = None,
    figures_dir: Path | None = None,
) -> str:
    """Render the report; returns the HTML (the caller writes it atomically)."""
    figs: dict[str, str] = {}
    has_test = test_predictions is not None and len(test_predictions) > 0
    if has_test:
        figs["parity"] = save_figure(parity_figure(test_predictions), figures_dir, "parity")
        figs["residuals"] = save_figure(
            residuals_by_family(test_predictions), figures_dir, "residuals_by_family"
        )
    if importances is not None:
        figs["importance"] = save_figure(importance_figure(importances), figures_dir, "importance")
    figs["pareto"] = save_figure(pareto_figure(candidates), figures_dir, "pareto")
    if case and case_ranked:
        from miscreen.cases.lgps import MEASURED_LOG10_SIGMA

        for name, ranked in case_ranked.items():
            marks = {
                f"{el} analogue" if el != "Ge" else "Li10GeP2S12": [a["id"] for a in rows]
                for el, rows in case[name]["analogues"].items()
            }
            fig = case_rank_figure(ranked, marks, MEASURED_LOG10_SIGMA)
            fig.axes[0].set_title(f"LGPS in the pool — {name} hold-out")
            figs[f"case_{name}"] = save_figure(fig, figures_dir, f"lgps_{name}")
    ranked = candidates[candidates["rank"].notna()]
    screen_cfg = provenance.get("config", {}).get("screen", {})
    weight = screen_cfg.get("supply_risk_weight", 0)
    score_note = f"{screen_cfg.get('score', 'mean')} of the interval" + (
        f" − {weight} × supply risk" if weight else ""
    )
    return TEMPLATE.render(
        run_name=run_name,
        created_at=provenance.get("created_at"),
        git_commit=provenance.get("git_commit"),
        config_path=provenance.get("stages", {}).get("run", {}).get("config_path"),
        evaluation_set=metrics.get("evaluation_set", "OBELiX official test split"),
        metric_rows=metric_rows(metrics),
        baselines=PUBLISHED_BASELINES,
        figs=figs,
        importances=importances,
        imp_rows=None if importances is None else importances.get("rows", pd.Series([""])).iloc[0],
        imp_reason="no saved composition model or OBELiX evaluation rows",
        top=top_table(candidates, top_k),
        top_columns=TOP_COLUMNS,
        score_note=score_note,
        excluded=excluded_counts(candidates),
        n_candidates=len(candidates),
        n_ranked=len(ranked),
        n_pareto=int(ranked.get("pareto_optimal", pd.Series(dtype=bool)).astype(bool).sum()),
        n_failures=n_failures,
        case=case,
        kamaya=KAMAYA,
        fmt=_fmt,
        ranks=_ranks,
        citations=CITATIONS + ([KAMAYA] if case else []),
    )


def build_report(run_dir: Path, top_k: int = 25) -> Path:
    """Read a run folder's outputs and write its ``report.html`` (atomically) and
    ``figures/*.png|svg``."""
    run_dir = Path(run_dir)
    candidates = store.read_table(run_dir / "candidates.parquet")
    metrics_path = run_dir / "metrics.json"
    metrics = store.read_json(metrics_path) if metrics_path.exists() else {}
    test_path = run_dir / "test_predictions.csv"
    test = store.read_table(test_path) if test_path.exists() else None
    manifest = store.read_json(run_dir / "manifest.json")
    importances = run_importances(run_dir, manifest, test) if test is not None else None
    case, case_ranked = _case(run_dir, candidates)
    html = write_report(
        run_name=run_dir.name,
        metrics={k: v for k, v in metrics.items() if not isinstance(v, dict)},
        test_predictions=test,
        candidates=candidates,
        n_failures=len(store.read_table(run_dir / "failures.csv")),
        provenance=manifest,
        top_k=top_k,
        importances=importances,
        case=case,
        case_ranked=case_ranked,
        figures_dir=run_dir / "figures",
    )
    return store.write_text(run_dir / "report.html", html)


def _case(run_dir: Path, candidates: pd.DataFrame) -> tuple[dict | None, dict | None]:
    """The LGPS case summary and both ranked pools, when the run folder holds a case."""
    path = run_dir / "case.json"
    strict = run_dir / "candidates_strict.parquet"
    if not path.exists() or not strict.exists():
        return None, None
    return store.read_json(path), {"standard": candidates, "strict": store.read_table(strict)}


def _count_key(metric: str) -> str:
    for name in ("mae", "rmse", "r2", "spearman"):
        if f"_{name}" in metric:
            return metric.replace(f"_{name}", "_n", 1)
    return ""
