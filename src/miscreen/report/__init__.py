"""A self-contained HTML report per run (figures embedded as PNG data URIs, and also saved
as PNG and SVG under ``<run>/figures/``). Tables are limited (top-k, counts), so large runs
render quickly; the full lists stay in ``candidates.parquet``."""

from __future__ import annotations

import math
import re
from pathlib import Path

import jinja2
import pandas as pd

from miscreen import atomic_io
from miscreen import schema as S
from miscreen.catalog import RunCatalog
from miscreen.formatting import fmt, save_figure
from miscreen.report.figures import (
    importance_figure,
    pareto_figure,
    parity_figure,
    residuals_by_family,
)

__all__ = ["build_report", "parity_figure", "write_report"]

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

TOP_COLUMNS = {
    "rank": "rank",
    "formula": "formula (source)",
    "spacegroup_number": "space group",
    "sigma_ms": "pred. σ (mS/cm) [interval]",
    "sigma": "pred. log10 σ (S/cm) [interval]",
    "p_fast": "P(fast)",
    "e_above_hull": "E_hull (eV/atom, method)",
    "band_gap": "band gap (eV, method)",
    "bvse_e3d_ev": "BVSE barrier (eV)",
    "li_fraction": "Li fraction",
    "supply_risk": "supply risk",
    "cost_usd_per_kg": "cost (USD/kg)",
    "why": "why",
}
MP_MATERIAL_URL = "https://next-gen.materialsproject.org/materials/{id}"
DOI_URL = "https://doi.org/{doi}"

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

<h2 id="summary">What this run did</h2>
<p>{{ summary }}</p>

<h2 id="accuracy">Model accuracy</h2>
<p class="note">Evaluation set: {{ evaluation_set }}. Errors in log10 S/cm: 1.0 means a
factor of 10 in conductivity.</p>
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
{% for row in top %}<tr>{% for c in top_columns %}{% if c == "why" %}<td class="why"><details>
<summary>why</summary>{{ row.why }}</details></td>{% elif c == "formula" %}<td>{{ row.formula }}
<br><span class="note">{% if row.url %}<a href="{{ row.url }}">{{ row.id }}</a>{% else %}{{
row.id }}{% endif %} · {{ row.source }}</span></td>{% else %}<td class="num">{{ row[c] }}</td>
{% endif %}{% endfor %}</tr>{% endfor %}</table>
<p class="note">Score: {{ score_note }}. Supply risk: weight-fraction mean of the elements'
production Herfindahl–Hirschman index / 10,000 (Gaultois et al. 2013); cost: raw-element
USD/kg (2013). {{ n_failures }} input rows could not be used: see <code>{{ files.failures.name
}}</code>. Full lists: <code>{{ files.candidates_csv.name }}</code> / <code>{{
files.candidates_parquet.name }}</code>.</p>
<h3>Why rows were excluded</h3>
<table><tr><th>filter</th><th>rows</th></tr>
{% for reason, n in excluded %}<tr><td>{{ reason }}</td><td class="num">{{ n }}</td></tr>
{% else %}<tr><td>none excluded</td><td></td></tr>{% endfor %}</table>

<h2 id="pareto">Pareto front: conductivity, stability, supply risk</h2>
<img alt="Pareto plot" src="data:image/png;base64,{{ figs.pareto }}">
<p class="note">{{ n_pareto }} ranked candidates are Pareto-optimal (no other candidate is at
least as good on predicted σ, energy above hull and supply risk, and better on one; unknown
energy above hull counts as worst).</p>

{% for section in sections %}{{ section|safe }}
{% endfor %}
<h2 id="citations">Data and citations</h2><ul>{% for c in citations %}<li>{{ c }}</li>
{% endfor %}</ul>
</body></html>
"""
)


def _is_count(key: str) -> bool:
    return bool(re.search(r"(^|_)n($|_)", key)) or key.endswith("_without_prediction")


def metric_rows(metrics: dict) -> list[tuple[str, object, object]]:
    """(name, formatted value, row count) for every scalar metric; the counts (``*_n*``)
    go in the row-count column, not in rows of their own."""
    return [
        (k, f"{v:.3f}" if isinstance(v, float) else v, metrics.get(_count_key(k), ""))
        for k, v in metrics.items()
        if not _is_count(k) and isinstance(v, int | float) and not isinstance(v, bool)
    ]


def sigma_ms_cm(log10_s_cm: object) -> str:
    """log10 σ (S/cm) as σ in mS/cm with 2 significant digits ('—' when missing)."""
    v = S.as_float(log10_s_cm)
    return "—" if math.isnan(v) else f"{1e3 * 10**v:.2g}"


def source_url(row: dict) -> str:
    """Where a candidate comes from: its Materials Project page, else its publication."""
    rid, doi = str(row.get(S.ID, "")), row.get(S.DOI)
    if re.match(r"^(mp|mvc)-\d+$", rid):
        return MP_MATERIAL_URL.format(id=rid)
    if isinstance(doi, str) and doi.strip():
        return DOI_URL.format(doi=doi.strip())
    return ""


def _with_method(row: dict, col: str, method_col: str, digits: int, missing: str) -> str:
    """A value with the method that gave it ("0.000 (chgnet_hull)"); a missing value is
    the method's reason when it gives one ("none: ...", "not checked: ..."), else
    ``missing``."""
    value, method = S.as_float(row.get(col)), row.get(method_col)
    method = method if isinstance(method, str) and method else ""
    if math.isnan(value):
        return method or missing
    return f"{fmt(value, digits)} ({method})" if method else fmt(value, digits)


def top_table(candidates: pd.DataFrame, top_k: int) -> list[dict]:
    """The first ``top_k`` ranked rows, formatted for the report."""
    top = candidates[candidates[S.RANK].notna()].head(top_k).copy()
    triples = list(zip(top[S.PRED], top[S.LOWER], top[S.UPPER], strict=True))
    top["sigma"] = [f"{fmt(p)} [{fmt(lo)}, {fmt(hi)}]" for p, lo, hi in triples]
    top["sigma_ms"] = [
        f"{sigma_ms_cm(p)} [{sigma_ms_cm(lo)}, {sigma_ms_cm(hi)}]" for p, lo, hi in triples
    ]
    for col, digits in (("li_fraction", 2), ("supply_risk", 2)):
        top[col] = top[col].map(lambda v, d=digits: fmt(v, d)) if col in top else "—"
    rows = top.to_dict("records")
    top[S.E_HULL] = [_with_method(r, S.E_HULL, S.STABILITY_METHOD, 3, "unknown") for r in rows]
    top[S.BAND_GAP] = [_with_method(r, S.BAND_GAP, S.BAND_GAP_METHOD, 2, "unknown") for r in rows]
    top[S.BVSE_E3D] = [_with_method(r, S.BVSE_E3D, S.BVSE_METHOD, 2, "—") for r in rows]
    top[S.P_FAST] = top[S.P_FAST].map(lambda v: fmt(v, 2)) if S.P_FAST in top else "—"
    if "cost_usd_per_kg" in top:
        top["cost_usd_per_kg"] = top["cost_usd_per_kg"].map(lambda v: fmt(v, 0))
    if S.SPACEGROUP in top:
        top[S.SPACEGROUP] = top[S.SPACEGROUP].map(lambda v: fmt(v, 0))
    top["url"] = [source_url(r) for r in top.to_dict("records")]
    for col in (*TOP_COLUMNS, S.ID, S.SOURCE):
        if col not in top:
            top[col] = "—"
    return top.to_dict("records")


# a row's own value in a threshold reason: "e_above_hull 0.123 > 0.05 eV/atom",
# "Li fraction 0.100 < min_li_fraction 0.2", "250 sites > max_sites 200"
ROW_VALUE = re.compile(r"(^|\s)-?\d[\d.e+-]*(?=( sites)? [<>] )")


def reason_kind(reason: str) -> str:
    """A filter's reason without the row's own values (ids, measured values), keeping the
    filter's threshold, for counting: "e_above_hull > 0.05 eV/atom"."""
    if reason.startswith("already measured"):
        return "already measured (a training or test material of this run)"
    if reason.startswith("same material as"):
        return "same material as another candidate (formula, space group, volume per atom)"
    if reason.startswith("redox-active"):
        return "redox-active transition metal"
    if reason.startswith("band_gap") and "P(gap" in reason:
        return "band_gap estimate surely below the minimum (P(gap >= minimum) < min_p_band_gap)"
    reason = re.sub(r"\(matched:[^)]*\)", "(matched)", reason)
    head = reason.split(": ")[0] if ": " in reason else reason
    return ROW_VALUE.sub("", head).strip()


def excluded_counts(candidates: pd.DataFrame, limit: int = 15) -> list[tuple[str, int]]:
    """How many rows each filter removed (grouped by the kind of reason)."""
    reasons = candidates.get(S.EXCLUDED, pd.Series(dtype=str)).fillna("")
    kinds = reasons[reasons != ""].map(reason_kind)
    return [(str(k), int(v)) for k, v in kinds.value_counts().head(limit).items()]


def summary_text(candidates: pd.DataFrame, metrics: dict, provenance: dict) -> str:
    """The report's first paragraph: what was screened, what was removed and why, how many
    were ranked, and how good the model is on new chemistry."""
    sources = provenance.get("config", {}).get("candidates", [])
    names = [str(c.get("dataset") or c.get("path") or c.get("kind")) for c in sources]
    ranked = int(candidates[S.RANK].notna().sum())
    removed = excluded_counts(candidates, limit=50)
    parts = [
        f"This run screened {len(candidates):,} candidate structures"
        + (f" from {', '.join(names)}" if names else "")
        + f" and ranked {ranked:,} of them by predicted room-temperature Li-ion conductivity."
    ]
    if removed:
        parts.append(
            f"{len(candidates) - ranked:,} were left out: "
            + "; ".join(f"{n:,} {kind}" for kind, n in removed)
            + "."
        )
    cv, test = metrics.get("cv_mae"), metrics.get("test_mae")
    if isinstance(cv, float) and isinstance(test, float):
        parts.append(
            f"On publications it never saw, the model is off by {cv:.2f} decades on average "
            f"(DOI-grouped cross-validation on the training split), and by {test:.2f} on "
            "OBELiX's official test split, whose chemistry is newer to it; treat each "
            "prediction as a range, which the interval gives."
        )
    return " ".join(parts)


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
    sections: list[str] | None = None,
    figures_dir: Path | None = None,
    baselines: dict[str, float] | None = None,
) -> str:
    """Render the report; returns the HTML (the caller writes it atomically). ``sections``
    are HTML fragments other stages contributed (see ``RunCatalog.write_section``);
    ``baselines`` are published results to show beside the run's (label -> MAE)."""
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
    ranked = candidates[candidates["rank"].notna()]
    screen_cfg = provenance.get("config", {}).get("screen", {})
    weight = screen_cfg.get("supply_risk_weight", 0)
    score = screen_cfg.get("score", "mean")
    score_note = (
        f"P(σ ≥ {screen_cfg.get('fast_sigma', 1e-4):g} S/cm)"
        + (" × P(band gap ≥ minimum)" if screen_cfg.get("min_band_gap") is not None else "")
        if score == "p_fast"
        else f"{score} of the interval"
    ) + (f" − {weight} × supply risk" if weight else "")
    return TEMPLATE.render(
        run_name=run_name,
        created_at=provenance.get("created_at"),
        git_commit=provenance.get("git_commit"),
        config_path=provenance.get("stages", {}).get("run", {}).get("config_path"),
        evaluation_set=metrics.get("evaluation_set", "OBELiX official test split"),
        metric_rows=metric_rows(metrics),
        summary=summary_text(candidates, metrics, provenance),
        baselines=baselines or {},
        figs=figs,
        importances=importances,
        imp_rows=None if importances is None else importances.get("rows", pd.Series([""])).iloc[0],
        imp_reason="not computed for this run (`miscreen report CONFIG --importances`, or "
        "report.importances: true in the config), or no saved composition model or OBELiX "
        f"evaluation rows ({RunCatalog(Path(run_name)).importances.name} is missing)",
        top=top_table(candidates, top_k),
        top_columns=TOP_COLUMNS,
        score_note=score_note,
        excluded=excluded_counts(candidates),
        n_candidates=len(candidates),
        n_ranked=len(ranked),
        n_pareto=int(ranked.get("pareto_optimal", pd.Series(dtype=bool)).astype(bool).sum()),
        n_failures=n_failures,
        sections=sections or [],
        files=RunCatalog(Path(run_name)),
        citations=CITATIONS,
    )


def build_report(run_dir: Path, top_k: int = 25, baselines: dict[str, float] | None = None) -> Path:
    """Read a run folder's outputs and write its ``report.html`` (atomically) and
    ``figures/*.png|svg``, with every section other stages contributed and the permutation
    importances when the run folder holds them. It reads the run folder only: nothing is
    computed again (the wiring computes the importances before)."""
    run = RunCatalog(Path(run_dir))
    candidates = atomic_io.read_table(run.candidates_parquet)
    metrics = atomic_io.read_json(run.metrics) if run.metrics.exists() else {}
    test = atomic_io.read_table(run.test_predictions) if run.test_predictions.exists() else None
    manifest = atomic_io.read_json(run.manifest)
    table = atomic_io.read_table(run.importances) if run.importances.exists() else None
    html = write_report(
        run_name=run.root.name,
        metrics={k: v for k, v in metrics.items() if not isinstance(v, dict)},
        test_predictions=test,
        candidates=candidates,
        n_failures=len(atomic_io.read_table(run.failures)),
        provenance=manifest,
        top_k=top_k,
        importances=table,
        sections=run.read_sections(),
        figures_dir=run.figures,
        baselines=baselines,
    )
    return atomic_io.write_text(run.report, html)


def _count_key(metric: str) -> str:
    for name in ("mae", "rmse", "r2", "spearman"):
        if f"_{name}" in metric:
            return metric.replace(f"_{name}", "_n", 1)
    return ""
