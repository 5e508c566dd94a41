"""The MD report section: per candidate an Arrhenius plot (pymatgen-analysis-diffusion's
``get_arrhenius_plot``) and a mean-square-displacement plot, and a table of sigma(300 K)
and Ea beside the ML prediction."""

from __future__ import annotations

from html import escape
from pathlib import Path

import jinja2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from miscreen.formatting import ea_text, interval_text, save_figure, sigma_text, significant
from miscreen.potentials import get_potential
from miscreen.verify.md_analysis import ArrheniusResult, TemperatureResult, fit_temperature
from miscreen.verify.md_protocol import MD_POTENTIAL, MDProtocol, describe
from miscreen.verify.md_results import CandidateResult
from miscreen.verify.md_tasks import EXPERIMENTAL, RELAXED


def arrhenius_figure(
    label: str, results: list[TemperatureResult], fit: ArrheniusResult
) -> plt.Figure:
    """D against 1000/T: the fitted temperatures and fit line from ``get_arrhenius_plot``,
    upper bounds (too few hops) as down-pointing triangles."""
    from pymatgen.analysis.diffusion.analyzer import get_arrhenius_plot

    fitted = [r for r in results if r.temperature_k in fit.temperatures_fit_k]
    bounded = [r for r in results if r.upper_bound]
    if len(fitted) >= 2:
        temps = np.array([fit_temperature(r) for r in fitted])  # as the fit was made
        ds = np.array([r.diffusivity_cm2_s for r in fitted])
        errs = np.array([r.diffusivity_std_cm2_s for r in fitted])
        ax = get_arrhenius_plot(temps, ds, diffusivity_errors=errs, unit="eV")
        fig = ax.figure
        fig.set_size_inches(7, 4.6)
        for text in ax.texts:
            text.set_fontsize(14)
    else:
        fig, ax = plt.subplots(figsize=(7, 4.6))
        ax.set_yscale("log")
        ax.set(xlabel="1000/T (K$^{-1}$)", ylabel="D (cm$^2$/s)")
    if bounded:
        ax.plot(
            [1000 / r.temperature_k for r in bounded],
            [r.diffusivity_bound_cm2_s for r in bounded],
            "v",
            color="tab:red",
            ms=9,
            label="upper bound (< min hops)",
        )
        ax.legend(fontsize=10, loc="lower left")
    ax.tick_params(labelsize=11)
    ax.xaxis.label.set_size(12)
    ax.yaxis.label.set_size(12)
    ax.set_title(label, fontsize=12)
    return fig


def msd_figure(label: str, results: list[TemperatureResult]) -> plt.Figure:
    """Li mean square displacement against time, one line per temperature."""
    fig, ax = plt.subplots(figsize=(7, 4.6))
    for r in sorted(results, key=lambda r: r.temperature_k):
        if r.msd_dt_fs:
            ax.plot(
                np.array(r.msd_dt_fs) / 1000,
                r.msd_a2,
                label=f"{r.temperature_k:g} K ({r.li_hops} hops)",
            )
    ax.set(xlabel="time lag (ps), the range fitted", ylabel="Li MSD (Å$^2$)", title=label)
    ax.legend(fontsize=9)
    return fig


SECTION = jinja2.Environment(autoescape=True).from_string(
    """<h2 id="md">Physics check: molecular dynamics with {{ potential }}</h2>
<p>{{ rows|length }} candidate(s), protocol <b>{{ protocol }}</b>: {{ description }}
Potential {{ version }}, {{ cell_text }}.
{% if low_statistics %}<b>Low statistics</b>: short runs on a small cell; read the numbers
as a rough ranking, not as predictions.{% endif %}</p>
<table><tr><th>formula</th><th>id</th><th>atoms</th><th>Li hops per T</th>
<th>Ea (eV)</th><th>σ(300 K) MD (mS/cm)</th><th>95% interval</th>
<th>σ ML (mS/cm)</th><th>ML interval</th><th>notes</th></tr>
{% for r in rows %}<tr><td>{{ r.formula }}</td><td>{{ r.id }}</td><td class="num">{{ r.atoms }}</td>
<td>{{ r.hops }}</td><td class="num">{{ r.ea }}</td><td class="num">{{ r.sigma }}</td>
<td class="num">{{ r.interval }}</td><td class="num">{{ r.ml }}</td>
<td class="num">{{ r.ml_interval }}</td>
<td>{{ r.notes }}</td></tr>{% endfor %}</table>
{% for r in rows %}<h3>{{ r.formula }} ({{ r.id }})</h3>
<p><img alt="Arrhenius plot of {{ r.id }}" src="data:image/png;base64,{{ r.arrhenius }}">
<img alt="MSD of {{ r.id }}" src="data:image/png;base64,{{ r.msd }}"></p>{% endfor %}
<p class="note">{{ version }} ({{ reference }}) through ASE,
NVT with Bussi's stochastic velocity rescaling; diffusion analysis with
pymatgen-analysis-diffusion (drift-corrected smoothed MSD, Nernst-Einstein conductivity,
Arrhenius fit and extrapolation; Ea ± standard error). σ(300 K) extrapolated from high
temperatures ignores phase changes in between (LGPS has a reported Li-sublattice change near
400 K), and universal potentials tend to soften barriers, so MD favours high σ. A value
marked "&lt;" is an upper bound: too few Li hops were seen for a number.</p>
"""
)


def md_section(
    candidates: list[dict],
    protocol: str,
    description: str,
    low_statistics: bool,
    figures: Path | None = None,
    potential: str = MD_POTENTIAL,
    potential_version: str = "",
    cell: str = RELAXED,
) -> str:
    """HTML fragment. Each candidate dict holds ``id``, ``formula``, ``atoms``,
    ``temperatures`` (TemperatureResult list), ``arrhenius`` (ArrheniusResult) and
    ``ml`` (predicted log10 sigma, lower, upper; or None); ``potential`` its name,
    ``potential_version`` the package and model it ran with, ``cell`` the MD cell."""
    rows = []
    for c in candidates:
        fit: ArrheniusResult = c["arrhenius"]
        temps: list[TemperatureResult] = sorted(c["temperatures"], key=lambda r: r.temperature_k)
        label = f"{c['formula']} ({c['id']})"
        slug = "md-" + "".join(ch if ch.isalnum() else "-" for ch in str(c["id"]))
        ml = c.get("ml")
        rows.append(
            {
                "id": c["id"],
                "formula": c["formula"],
                "atoms": c["atoms"],
                "hops": ", ".join(f"{r.temperature_k:g} K: {r.li_hops}" for r in temps),
                "ea": ea_text(fit.ea_ev, fit.ea_stderr_ev),
                "sigma": sigma_text(
                    fit.sigma_300k_ms_cm, None, fit.sigma_300k_upper_bound_ms_cm, digits=2
                ),
                "interval": interval_text(fit.sigma_300k_interval_ms_cm),
                "ml": significant(1e3 * 10 ** ml[0]) if ml else "—",
                "ml_interval": interval_text([1e3 * 10 ** ml[1], 1e3 * 10 ** ml[2]]) if ml else "—",
                "notes": "; ".join(fit.notes),
                "arrhenius": save_figure(
                    arrhenius_figure(label, temps, fit), figures, f"{slug}-arrhenius"
                ),
                "msd": save_figure(msd_figure(label, temps), figures, f"{slug}-msd"),
            }
        )
    pot = get_potential(potential)
    cell_text = (
        "NVT at the input's lattice (atoms relaxed at fixed cell)"
        if cell == EXPERIMENTAL
        else "NVT in the cell relaxed with the potential"
    )
    return SECTION.render(
        rows=rows,
        protocol=protocol,
        description=description,
        low_statistics=low_statistics,
        potential=pot.name,
        version=potential_version or pot.version,
        reference=pot.reference,
        cell_text=cell_text,
    )


def results_section(
    results: list[CandidateResult],
    protocol: MDProtocol,
    figures: Path | None = None,
    potential: str = MD_POTENTIAL,
    potential_version: str = "",
    cell: str = RELAXED,
) -> str:
    """The report section of a run's MD results: the candidates with a fit, then a note
    naming those without a result yet and why."""
    shown = [
        {
            "id": r.id,
            "formula": r.formula,
            "atoms": r.atoms,
            "temperatures": r.temperatures,
            "arrhenius": r.arrhenius,
            "ml": r.ml,
        }
        for r in results
        if r.arrhenius is not None
    ]
    html = md_section(
        shown,
        protocol.name,
        describe(protocol),
        protocol.low_statistics,
        figures,
        potential,
        potential_version,
        cell,
    )
    pending = [r for r in results if r.incomplete or (r.problems and r.arrhenius is None)]
    if pending:
        items = [
            f"{r.id}: " + "; ".join([*(f"{t:g} K not finished" for t in r.incomplete), *r.problems])
            for r in pending
        ]
        html += (
            '<p class="note">Without a result yet: '
            + escape(" | ".join(items))
            + ". Run the same command again to resume unfinished tasks.</p>"
        )
    return html
