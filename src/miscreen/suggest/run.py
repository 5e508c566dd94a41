"""Suggestions for a screened run: the pool is the run's ranked candidates, the measured
materials are the run's labelled rows; the interval gives each prediction's spread."""

from __future__ import annotations

import jinja2
import numpy as np
import pandas as pd
from scipy.stats import norm

from miscreen import atomic_io
from miscreen import schema as S
from miscreen.catalog import RunCatalog
from miscreen.suggest.campaign import CampaignRound, append_round, read_campaign
from miscreen.suggest.selection import SD, nearest_measured, suggest_batch


def pool_from_run(run: RunCatalog, interval: float) -> pd.DataFrame:
    """The run's ranked candidates with the sd implied by their central ``interval``."""
    if not run.candidates_parquet.is_file():
        raise FileNotFoundError(
            f"{run.candidates_parquet} is missing: screen first (`miscreen run CONFIG`)"
        )
    ranked = atomic_io.read_table(run.candidates_parquet)
    pool = ranked[ranked[S.RANK].notna()].reset_index(drop=True)
    pool = pool.drop(columns=[S.RANK, S.WHY, S.SCORE, S.EXCLUDED], errors="ignore")
    z = float(norm.ppf(0.5 + interval / 2))
    return pool.assign(**{SD: (pool[S.UPPER] - pool[S.LOWER]) / (2 * z)})


def measured_from_run(run: RunCatalog) -> pd.DataFrame:
    """The run's measured materials (id, composition, log10 sigma)."""
    if not run.known_materials.is_file():
        raise FileNotFoundError(
            f"{run.known_materials} is missing: train first (`miscreen train CONFIG`)"
        )
    return atomic_io.read_table(run.known_materials).dropna(subset=[S.TARGET])


def suggest_for_run(
    run: RunCatalog,
    k: int,
    acquisition: str,
    diversity: str,
    interval: float,
    seed: int,
) -> pd.DataFrame:
    """The next ``k`` materials to make, each with the nearest measured material; written to
    ``suggestions.csv`` and logged as a round of ``campaign.jsonl``."""
    measured = measured_from_run(run)
    best = float(measured[S.TARGET].max())
    pool = pool_from_run(run, interval)
    picks = suggest_batch(
        pool, k, acquisition, best, diversity, seed, measured=measured[S.ID], interval=interval
    )
    picks = picks.join(nearest_measured(picks, measured))
    atomic_io.write_table(picks, run.suggestions)
    rounds = read_campaign(run.campaign) if run.campaign.exists() else []
    entry = CampaignRound(
        round=len(rounds),
        acquisition=acquisition,
        suggested=tuple(picks[S.ID].astype(str)),
        measured=newly_measured(rounds, measured),
        n_measured=len(measured),
        metrics={"best_measured_log10_sigma": best, **run_metrics(run)},
        seed=seed,
        note=f"diversity {diversity}; pool {len(pool)} ranked candidates",
    )
    append_round(run.campaign, entry)
    run.write_section("suggest", section(picks, acquisition, best, len(pool)), order=70)
    return picks


def newly_measured(rounds: list[CampaignRound], measured: pd.DataFrame) -> dict[str, float]:
    """Materials suggested in earlier rounds that are now measured (they came back in the
    labelled data under the same id), with their log10 sigma."""
    asked = {i for r in rounds for i in r.suggested}
    asked -= {i for r in rounds for i in r.measured}
    found = measured[measured[S.ID].astype(str).isin(asked)]
    return dict(zip(found[S.ID].astype(str), found[S.TARGET].astype(float), strict=True))


def run_metrics(run: RunCatalog) -> dict[str, float]:
    """The model's headline metrics for the campaign log (those the run has)."""
    metrics = atomic_io.read_json(run.metrics) if run.metrics.exists() else {}
    keys = ("cv_mae", "test_mae", "test_spearman")
    return {k: float(metrics[k]) for k in keys if isinstance(metrics.get(k), int | float)}


SECTION = jinja2.Environment(autoescape=True).from_string(
    """<h2 id="suggest">Suggested next experiments</h2>
<p>{{ picks|length }} materials to make and measure next, chosen from {{ pool }} ranked
candidates by <b>{{ acquisition }}</b> (best measured so far: log10 σ {{ "%.2f"|format(best)
}}), at most one per chemical system. Each comes with the measured material nearest to it.</p>
<table><tr><th>#</th><th>formula</th><th>id</th><th>pred. log10 σ [interval]</th>
<th>acquisition</th><th>nearest measured (log10 σ)</th><th>why</th></tr>
{% for r in picks %}<tr><td class="num">{{ r["rank"] }}</td><td>{{ r.formula }}</td>
<td>{{ r.id }}</td><td class="num">{{ "%.2f"|format(r.predicted_log10_sigma) }} [{{
"%.2f"|format(r.lower) }}, {{ "%.2f"|format(r.upper) }}]</td>
<td class="num">{{ "%.3g"|format(r.acquisition_value) }}</td>
<td>{{ r.nearest_measured_composition }} ({{ "%.2f"|format(r.nearest_measured_log10_sigma) }})</td>
<td class="why"><details><summary>why</summary>{{ r.why }}</details></td></tr>{% endfor %}
</table>
<p class="note">Sequential learning on the model's uncertainty (Ling et al., Integr. Mater.
Manuf. Innov. 6, 207 (2017)). Measure them, add the results to a labelled CSV, retrain, and
suggest again; each round is logged in <code>campaign.jsonl</code>.</p>
"""
)


def section(picks: pd.DataFrame, acquisition: str, best: float, pool: int) -> str:
    rows = picks.replace({np.nan: None}).to_dict("records")
    return SECTION.render(picks=rows, acquisition=acquisition, best=best, pool=pool)
