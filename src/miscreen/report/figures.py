"""The report's figures, each a pure function of run-folder tables -> matplotlib Figure.

The notebooks call the same functions, so a figure has one code path."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from miscreen import schema as S
from miscreen.schema import PRED
from miscreen.schema import TARGET as MEASURED


def parity_figure(test: pd.DataFrame) -> plt.Figure:
    """Measured vs predicted log10 sigma with the interval as error bars."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    has_cif = test[S.HAS_STRUCTURE].astype(bool)
    for mask, label, color in (
        (has_cif, "with CIF", "tab:blue"),
        (~has_cif, "composition only", "tab:orange"),
    ):
        sub = test[mask]
        yerr = np.vstack([sub[PRED] - sub[S.LOWER], sub[S.UPPER] - sub[PRED]])
        ax.errorbar(
            sub[MEASURED], sub[PRED], yerr=yerr, fmt="o", ms=4, alpha=0.7,
            elinewidth=0.6, color=color, label=f"{label} ({len(sub)})",
        )  # fmt: skip
    lo = min(test[MEASURED].min(), test[PRED].min()) - 0.5
    hi = max(test[MEASURED].max(), test[PRED].max()) + 0.5
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set(xlim=(lo, hi), ylim=(lo, hi), xlabel="measured log10 σ (S/cm)",
           ylabel="predicted log10 σ (S/cm)")  # fmt: skip
    ax.legend(loc="upper left", fontsize=8)
    return fig


def residuals_by_family(test: pd.DataFrame, max_families: int = 12) -> plt.Figure:
    """Box plot of predicted - measured per crystal family (largest families first)."""
    res = (test[PRED] - test[MEASURED]).rename("residual")
    fam = test["family"].fillna("unknown").astype(str)
    order = fam.value_counts().index[:max_families]
    data = [res[fam == f].dropna().to_numpy() for f in order]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(order) + 1.5))
    ax.boxplot(
        data, vert=False, tick_labels=[f"{f} ({len(d)})" for f, d in zip(order, data, strict=True)]
    )
    ax.axvline(0, color="k", lw=0.8, ls="--")
    ax.invert_yaxis()
    ax.set(xlabel="predicted − measured log10 σ", title="Residuals by family")
    return fig


def importance_figure(importances: pd.DataFrame, top: int = 15) -> plt.Figure:
    """Horizontal bars of the largest permutation importances with their spread."""
    sub = importances.sort_values("importance_mean", ascending=False).head(top)[::-1]
    fig, ax = plt.subplots(figsize=(6.5, 0.3 * len(sub) + 1.2))
    ax.barh(sub["feature"], sub["importance_mean"], xerr=sub["importance_std"], color="tab:green")
    ax.set(xlabel="increase in MAE when permuted (log10 S/cm)", title="Permutation importance")
    ax.tick_params(axis="y", labelsize=7)
    return fig


def pareto_figure(candidates: pd.DataFrame, max_points: int = 20_000) -> plt.Figure:
    """Predicted conductivity vs supply risk of the ranked candidates, Pareto front marked;
    colour shows energy above hull where known (grey: unknown)."""
    ranked = candidates[candidates[S.RANK].notna()]
    if len(ranked) > max_points:  # keep big runs quick: the front plus a sample
        front = ranked[ranked["pareto_optimal"].astype(bool)]
        rest = ranked.drop(front.index).sample(max_points, random_state=0)
        ranked = pd.concat([front, rest])
    fig, ax = plt.subplots(figsize=(6.5, 4.8))
    ehull = pd.to_numeric(ranked.get("e_above_hull"), errors="coerce")
    known = ehull.notna()
    ax.scatter(ranked.loc[~known, "supply_risk"], ranked.loc[~known, PRED], s=8, c="0.7",
               label="E_hull unknown", rasterized=True)  # fmt: skip
    sc = ax.scatter(ranked.loc[known, "supply_risk"], ranked.loc[known, PRED], s=10,
                    c=ehull[known].clip(upper=0.2), cmap="viridis_r", rasterized=True)  # fmt: skip
    if known.any():
        fig.colorbar(sc, ax=ax, label="E above hull (eV/atom, clipped at 0.2)")
    front = ranked[ranked["pareto_optimal"].astype(bool)].sort_values("supply_risk")
    ax.plot(front["supply_risk"], front[PRED], "r^", ms=7, mfc="none",
            label=f"Pareto-optimal ({len(front)})")  # fmt: skip
    ax.set(xlabel="supply risk (production HHI / 10,000)", ylabel="predicted log10 σ (S/cm)",
           title="Conductivity, stability and supply risk")  # fmt: skip
    ax.legend(fontsize=8, loc="lower right")
    return fig


def pool_rank_figure(
    ranked: pd.DataFrame,
    marks: dict[str, list[str]],
    measured: float | None = None,
    measured_label: str = "measured",
) -> plt.Figure:
    """Histogram of the pool's predictions with the named rows (label -> ids) marked."""
    pool = ranked[ranked[S.RANK].notna()]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(pool[PRED], bins=50, color="0.75", label=f"pool ({len(pool)})")
    colors = iter(["tab:red", "tab:blue", "tab:purple", "tab:green"])
    by_id = pool.set_index(S.ID)
    for label, ids in marks.items():
        ids = [i for i in ids if i in by_id.index]
        if ids:
            color = next(colors)
            for j, i in enumerate(ids):
                ax.axvline(by_id.at[i, PRED], color=color, lw=1.5,
                           label=label if j == 0 else None)  # fmt: skip
    if measured is not None:
        ax.axvline(measured, color="k", ls="--", lw=1, label=measured_label)
    ax.set(xlabel="predicted log10 σ (S/cm)", ylabel="pool structures")
    ax.legend(fontsize=8, loc="upper left")
    return fig
