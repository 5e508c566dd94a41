"""The LGPS case's report section: the hold-outs' headline numbers, LGPS in the pool (one
figure per hold-out, saved under ``figures/``) and each hold-out's top 20."""

from __future__ import annotations

import jinja2
import pandas as pd

from miscreen.catalog import RunCatalog
from miscreen.formatting import fmt, save_figure
from miscreen.report.figures import pool_rank_figure

SECTION = jinja2.Environment(autoescape=True).from_string(
    """<h2 id="lgps">Case study: rediscovering Li10GeP2S12</h2>
<p>The model was trained on OBELiX with every LGPS-family entry held out
({{ case.standard.training_rows }} training rows, {{ case.standard.heldout_rows }} held out).
It then screened {{ case.pool_size }} deduplicated Li structures ({{
case.pool_duplicates_removed }} cross-source duplicates removed): Materials Project 2018 and
matbench-dielectric snapshots, the held-out LGPS-family entries with CIFs and pymatgen's
Li10GeP2S12 cell. Measured: log10 σ = {{ "%.2f"|format(case.measured_log10_sigma) }}
(12 mS/cm; {{ case.measured_source }})</p>
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
{% for fig in figures %}<img alt="LGPS in the pool" src="data:image/png;base64,{{ fig }}">
{% endfor %}
{% for name, v in [("standard", case.standard), ("strict", case.strict)] %}
<h3>Top 20 under the {{ name }} hold-out</h3>
<table><tr><th>rank</th><th>formula</th><th>id</th><th>source</th><th>why</th></tr>
{% for r in v.top20 %}<tr><td class="num">{{ r.rank }}</td><td>{{ r.formula }}</td>
<td>{{ r.id }}</td><td>{{ r.source }}</td><td class="why">{{ r.why }}</td></tr>{% endfor %}
</table>{% endfor %}
<p class="note">Numbers as produced; nothing was tuned on the LGPS result (model settings
come from cross-validation on training data). Full numbers: <code>{{ case_file }}</code>.</p>
"""
)


def case_section(case: dict, standard: pd.DataFrame, strict: pd.DataFrame, run: RunCatalog) -> str:
    """The case's report section (HTML fragment) from ``case.json``'s numbers and the two
    ranked pools; its figures are saved under the run's ``figures/``."""
    figures = []
    for name, ranked in (("standard", standard), ("strict", strict)):
        marks = {
            f"{el} analogue" if el != "Ge" else "Li10GeP2S12": [a["id"] for a in rows]
            for el, rows in case[name]["analogues"].items()
        }
        measured = case["measured_log10_sigma"]
        fig = pool_rank_figure(ranked, marks, measured, "LGPS measured (Kamaya 2011)")
        fig.axes[0].set_title(f"LGPS in the pool — {name} hold-out")
        figures.append(save_figure(fig, run.figures, f"lgps_{name}"))
    return SECTION.render(
        case=case, figures=figures, fmt=fmt, ranks=ranks, case_file=run.case_json.name
    )


def ranks(rows: list[dict]) -> str:
    """Ranks of matching rows, comma-separated ('not in pool' when none)."""
    return ", ".join(str(r.get("rank")) for r in rows) if rows else "not in pool"
