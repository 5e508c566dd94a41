"""A self-contained HTML report per run (figures embedded as PNG data URIs)."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import jinja2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from miscreen import store

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
]

TEMPLATE = jinja2.Template(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>miscreen run {{ run_name }}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:0.9em;margin:1em 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f3f3f3} .num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%} .note{color:#555;font-size:0.9em}
</style></head><body>
<h1>miscreen — run <code>{{ run_name }}</code></h1>
<p class="note">Created {{ created_at }} · git {{ git_commit or "unknown" }} · config
<code>{{ config_path }}</code>. Target: log10 of room-temperature ionic conductivity (S/cm).</p>

<h2>Model accuracy (OBELiX official split)</h2>
<table><tr><th>metric</th><th>value</th><th>rows</th></tr>
{% for name, value, n in metric_rows %}<tr><td>{{ name }}</td><td class="num">{{ value }}</td>
<td class="num">{{ n }}</td></tr>{% endfor %}</table>
<table><tr><th>published baseline (test MAE, log10 S/cm)</th><th>value</th></tr>
{% for name, value in baselines.items() %}<tr><td>{{ name }}</td>
<td class="num">{{ value }}</td></tr>{% endfor %}</table>
{% if parity %}<h3>Parity plot (test split)</h3>
<img alt="parity plot" src="data:image/png;base64,{{ parity }}">{% endif %}

<h2>Top {{ top|length }} candidates of {{ n_candidates }} ({{ n_ranked }} ranked)</h2>
<table><tr>{% for c in top_columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in top %}<tr>{% for c in top_columns %}<td>{{ row[c] }}</td>{% endfor %}</tr>{% endfor %}
</table>
<p class="note">{{ n_failures }} input rows could not be used: see <code>failures.csv</code>.
Full lists: <code>candidates.csv</code> / <code>candidates.parquet</code>.</p>

<h2>Data and citations</h2><ul>{% for c in citations %}<li>{{ c }}</li>{% endfor %}</ul>
</body></html>
"""
)

TOP_COLUMNS = [
    "rank",
    "id",
    "source",
    "formula",
    "predicted_log10_sigma",
    "lower",
    "upper",
    "out_of_domain",
    "model",
    "why",
]


def figure_png(fig: plt.Figure) -> str:
    """Encode a figure as base64 PNG and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def parity_figure(test: pd.DataFrame) -> plt.Figure:
    """Measured vs predicted log10 sigma with the interval as error bars."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    has_cif = test["has_structure"].astype(bool)
    for mask, label, color in (
        (has_cif, "with CIF", "tab:blue"),
        (~has_cif, "composition only", "tab:orange"),
    ):
        sub = test[mask]
        yerr = np.vstack(
            [
                sub["predicted_log10_sigma"] - sub["lower"],
                sub["upper"] - sub["predicted_log10_sigma"],
            ]
        )
        ax.errorbar(
            sub["log10_sigma"],
            sub["predicted_log10_sigma"],
            yerr=yerr,
            fmt="o",
            ms=4,
            alpha=0.7,
            elinewidth=0.6,
            color=color,
            label=f"{label} ({len(sub)})",
        )
    lims = [
        min(test["log10_sigma"].min(), test["predicted_log10_sigma"].min()) - 0.5,
        max(test["log10_sigma"].max(), test["predicted_log10_sigma"].max()) + 0.5,
    ]
    ax.plot(lims, lims, "k--", lw=0.8)
    ax.set(
        xlim=lims, ylim=lims, xlabel="measured log10 σ (S/cm)", ylabel="predicted log10 σ (S/cm)"
    )
    ax.legend(loc="upper left", fontsize=8)
    return fig


def write_report(
    *,
    run_name: str,
    metrics: dict,
    test_predictions: pd.DataFrame | None,
    candidates: pd.DataFrame,
    n_failures: int,
    provenance: dict,
    top_k: int = 25,
) -> str:
    """Render the report; returns the HTML (the caller writes it atomically)."""
    metric_rows = [
        (k, f"{v:.3f}" if isinstance(v, float) else v, metrics.get(_count_key(k), ""))
        for k, v in metrics.items()
        if not k.endswith("_n") and isinstance(v, int | float) and not isinstance(v, bool)
    ]
    parity = (
        figure_png(parity_figure(test_predictions))
        if test_predictions is not None and len(test_predictions)
        else None
    )
    ranked = candidates[candidates["rank"].notna()]
    top = ranked.head(top_k).copy()
    for col in ("predicted_log10_sigma", "lower", "upper"):
        top[col] = top[col].map(lambda v: f"{v:.2f}")
    columns = [c for c in TOP_COLUMNS if c in top.columns]
    return TEMPLATE.render(
        run_name=run_name,
        created_at=provenance.get("created_at"),
        git_commit=provenance.get("git_commit"),
        config_path=provenance.get("stages", {}).get("run", {}).get("config_path"),
        metric_rows=metric_rows,
        baselines=PUBLISHED_BASELINES,
        parity=parity,
        top=top.to_dict("records"),
        top_columns=columns,
        n_candidates=len(candidates),
        n_ranked=len(ranked),
        n_failures=n_failures,
        citations=CITATIONS,
    )


def build_report(run_dir: Path, top_k: int = 25) -> Path:
    """Read a run folder's outputs and write its ``report.html`` (atomically)."""
    run_dir = Path(run_dir)
    candidates = store.read_table(run_dir / "candidates.parquet")
    metrics_path = run_dir / "metrics.json"
    metrics = store.read_json(metrics_path) if metrics_path.exists() else {}
    test_path = run_dir / "test_predictions.csv"
    manifest = store.read_json(run_dir / "manifest.json")
    html = write_report(
        run_name=run_dir.name,
        metrics={k: v for k, v in metrics.items() if not isinstance(v, dict)},
        test_predictions=store.read_table(test_path) if test_path.exists() else None,
        candidates=candidates,
        n_failures=len(store.read_table(run_dir / "failures.csv")),
        provenance=manifest,
        top_k=top_k,
    )
    return store.write_text(run_dir / "report.html", html)


def _count_key(metric: str) -> str:
    for name in ("mae", "rmse", "r2", "spearman"):
        if f"_{name}" in metric:
            return metric.replace(f"_{name}", "_n", 1)
    return ""
