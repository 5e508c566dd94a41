"""Suggestions for a screened run: the pool is the run's ranked candidates, the measured
materials are the run's labelled rows; the interval gives each prediction's spread. Nothing
here reads or writes files: the wiring (``miscreen.pipeline.suggestion``) reads the run
folder, passes its tables in and writes what :func:`suggest_next` returns."""

from __future__ import annotations

from dataclasses import dataclass

import jinja2
import numpy as np
import pandas as pd
from scipy.stats import norm

from miscreen import schema as S
from miscreen.suggest.campaign import CampaignRound
from miscreen.suggest.selection import ACQUISITION, PRIOR, SD, nearest_measured, suggest_batch


@dataclass(frozen=True)
class Suggestions:
    """One round of suggestions: the picks, the campaign round to log, the report section."""

    picks: pd.DataFrame
    round: CampaignRound
    section: str  # HTML fragment


def pool_from_ranked(ranked: pd.DataFrame, interval: float) -> pd.DataFrame:
    """The ranked candidates with the sd implied by their central ``interval``."""
    pool = ranked[ranked[S.RANK].notna()].reset_index(drop=True)
    pool = pool.drop(columns=[S.RANK, S.WHY, S.SCORE, S.EXCLUDED], errors="ignore")
    z = float(norm.ppf(0.5 + interval / 2))
    return pool.assign(**{SD: (pool[S.UPPER] - pool[S.LOWER]) / (2 * z)})


def suggest_next(
    ranked: pd.DataFrame,
    measured: pd.DataFrame,
    rounds: list[CampaignRound],
    metrics: dict,
    k: int,
    acquisition: str,
    diversity: str,
    interval: float,
    seed: int,
    *,
    physics_prior: bool = True,
) -> Suggestions:
    """The next ``k`` materials to make from a run's ``ranked`` candidates, each with the
    nearest ``measured`` material (id, composition, log10 sigma), and the campaign round that
    follows the logged ``rounds`` (with the run's headline ``metrics``). While no measured
    material is a fast conductor, ``physics_prior`` ranks by the label-free prior instead of
    ``acquisition`` (the cold start of :func:`~miscreen.suggest.selection.suggest_batch`)."""
    measured = measured.dropna(subset=[S.TARGET])
    best = float(measured[S.TARGET].max())
    pool = pool_from_ranked(ranked, interval)
    picks = suggest_batch(
        pool,
        k,
        acquisition,
        best,
        diversity,
        seed,
        measured=measured[S.ID],
        interval=interval,
        physics_prior=physics_prior,
    )
    used = PRIOR if len(picks) and (picks[ACQUISITION] == PRIOR).all() else acquisition
    picks = picks.join(nearest_measured(picks, measured))
    entry = CampaignRound(
        round=len(rounds),
        acquisition=used,
        suggested=tuple(picks[S.ID].astype(str)),
        measured=newly_measured(rounds, measured),
        n_measured=len(measured),
        metrics={"best_measured_log10_sigma": best, **headline_metrics(metrics)},
        seed=seed,
        note=f"diversity {diversity}; pool {len(pool)} ranked candidates",
    )
    return Suggestions(picks, entry, section(picks, used, best, len(pool)))


def newly_measured(rounds: list[CampaignRound], measured: pd.DataFrame) -> dict[str, float]:
    """Materials suggested in earlier rounds that are now measured (they came back in the
    labelled data under the same id), with their log10 sigma."""
    asked = {i for r in rounds for i in r.suggested}
    asked -= {i for r in rounds for i in r.measured}
    found = measured[measured[S.ID].astype(str).isin(asked)]
    return dict(zip(found[S.ID].astype(str), found[S.TARGET].astype(float), strict=True))


def headline_metrics(metrics: dict) -> dict[str, float]:
    """The model's headline metrics for the campaign log (those the run has)."""
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
