"""Calibration groups, routing and spread floor chosen together: the nested study that
``interval_groups.py`` owed (issue 23, interval honesty).

``benchmarks/research/interval_groups.py`` held the routing fixed (CIF rows: structure
model; others: cell model) while it compared calibration folds grouped by DOI with folds
grouped by DOI and formula. In the pipeline the routing is chosen from the same out-of-fold
errors, and with DOI-and-formula folds it sends every row to the composition model. This
study puts the routing inside: in each outer fold (DOI and formula grouped together, as the
official split and the screened candidates are), the three models (composition, cell,
structure; the pipeline's presets and estimator, censored rows at their bound) are fitted as
:class:`miscreen.train.estimators.ConformalRegressor` with the variant's inner groups and
floor, each row kind is routed to the model with the lowest inner out-of-fold error on
training rows of that kind (:func:`miscreen.train.routing.choose_routing` itself), and the
held-out rows are scored: official MAE (censored rows at -15) on all rows and CIF rows,
bound-aware MAE, and 80 % / 95 % coverage (a censored row is covered when the lower end is
at or below its bound) with the mean 80 % width.

Variants: ``doi@1`` (today: DOI groups, floor 1), ``doi_formula@1``, ``doi_formula@0.25``.

Run as ``.venv/bin/python benchmarks/research/routed_calibration.py`` (3 seeds, 100 trees;
about 25 minutes on a free core). Training split only, through
:mod:`benchmarks.model_research`. Writes ``results/bench/routed_calibration.json``.

Rule, fixed before the first run: a ``doi_formula`` variant replaces today's pipeline only
if its coverage is within 2 points of nominal at 80 % and at 95 % and its official MAE on
all rows is no higher than ``doi@1``'s (means over the seeds); among those, the narrowest
80 % interval wins. Otherwise the pipeline stays as it is.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # for benchmarks.*

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold

from benchmarks import model_research as research
from benchmarks.research.interval_groups import LEVELS, conformal, scores
from benchmarks.research.published_rf_cv import DOI_FORMULA_FOLDS, doi_formula_groups
from miscreen.train.routing import choose_routing
from miscreen.train.row_kinds import CELL_ROWS, STRUCTURE_ROWS

OUT = research.REPO / "results" / "bench" / "routed_calibration.json"
VARIANTS = (("doi", 1.0), ("doi_formula", 1.0), ("doi_formula", 0.25))


def name(groups: str, floor: float) -> str:
    return f"{groups}@{floor:g}"


def outer_fold(
    data: research.Data,
    X: dict[str, np.ndarray],
    groups: np.ndarray,
    floor: float,
    tr: np.ndarray,
    te: np.ndarray,
    seed: int,
    trees: int,
) -> tuple[np.ndarray, dict[float, tuple[np.ndarray, np.ndarray]], dict[str, str]]:
    """Routed predictions and intervals for the ``te`` rows, and the routing chosen."""
    y = np.where(data.censored, data.bound, data.y)
    models = {
        m: conformal(table[tr], y[tr], groups[tr], floor, seed, trees) for m, table in X.items()
    }
    kind_of = np.where(data.has_cif, STRUCTURE_ROWS, CELL_ROWS)
    chosen = choose_routing(  # the pipeline's rule, on the inner out-of-fold errors
        {m: pd.Series(model.residuals_) for m, model in models.items()},
        pd.Series(kind_of[tr]),
    )
    pred = np.full(len(te), np.nan)
    bounds = {a: (np.full(len(te), np.nan), np.full(len(te), np.nan)) for a in LEVELS}
    routing = {}
    for kind in (STRUCTURE_ROWS, CELL_ROWS):
        best = chosen[kind]["model"]
        routing[kind.removesuffix("_rows")] = best
        rows = kind_of[te] == kind
        if not rows.any():
            continue
        for a in LEVELS:
            p, lo, hi = models[best].predict_interval(X[best][te[rows]], a)
            pred[rows] = p
            bounds[a][0][rows], bounds[a][1][rows] = lo, hi
    return pred, bounds, routing


def main(argv: list[str] | None = None) -> dict:
    args = research.study_arguments(__doc__, 3, OUT).parse_args(argv)
    os.environ.setdefault("MISCREEN_DATA_DIR", str(args.cache_dir / "data"))
    t0 = time.perf_counter()
    data = research.load(args.cache_dir)
    X = {
        "composition": research.features(data, "composition", ("oxi",)).to_numpy(float),
        "cell": research.features(data, "cell", ("oxi",)).to_numpy(float),
        "structure": research.features(data, "structure", ()).to_numpy(float),
    }
    linked = doi_formula_groups(data).astype(str)
    inner = {"doi": data.doi, "doi_formula": linked}
    n = len(data.y)
    runs: dict[str, list[dict]] = {name(g, f): [] for g, f in VARIANTS}
    for seed in range(args.seeds):
        outer = GroupKFold(research.N_FOLDS, shuffle=True, random_state=seed)
        folds = list(outer.split(np.arange(n), groups=linked))
        for g, f in VARIANTS:
            pred = np.full(n, np.nan)
            bounds = {a: (np.full(n, np.nan), np.full(n, np.nan)) for a in LEVELS}
            routings = []
            for tr, te in folds:
                p, b, routing = outer_fold(data, X, inner[g], f, tr, te, seed, args.trees)
                pred[te] = p
                for a in LEVELS:
                    bounds[a][0][te], bounds[a][1][te] = b[a]
                routings.append(routing)
            err, berr = research.row_errors(data, pred)
            row = {
                "mae": float(err.mean()),
                "mae_cif": float(err[data.has_cif].mean()),
                "bmae": float(berr.mean()),
                "routing": routings,
            }
            for a in LEVELS:
                s = scores(data, *bounds[a])
                row[f"coverage_{a:g}"], row[f"width_{a:g}"] = s["coverage"], s["width"]
            runs[name(g, f)].append(row)
            print(f"seed {seed} {name(g, f)}: {time.perf_counter() - t0:.0f} s", flush=True)
    keys = ("mae", "mae_cif", "bmae", "coverage_0.8", "width_0.8", "coverage_0.95", "width_0.95")
    summary = {v: {k: float(np.mean([r[k] for r in rs])) for k in keys} for v, rs in runs.items()}
    for v, s in summary.items():
        print(f"{v:18s} " + " ".join(f"{k} {s[k]:.3f}" for k in keys))
    today = summary[name("doi", 1.0)]
    ok = [
        v
        for v, s in summary.items()
        if v.startswith("doi_formula")
        and all(s[f"coverage_{a:g}"] >= a - 0.02 for a in LEVELS)
        and s["mae"] <= today["mae"]
    ]
    chosen = min(ok, key=lambda v: summary[v]["width_0.8"]) if ok else None
    print(f"rule: {chosen or 'the pipeline stays as it is'}")
    out = {
        "outer_folds": DOI_FORMULA_FOLDS,
        "rule": "a doi_formula variant within 2 points of nominal coverage at 80 % and 95 % "
        "and with official MAE no higher than doi@1 replaces it (narrowest 80 % wins)",
        "seeds": args.seeds,
        "trees": args.trees,
        "summary": summary,
        "runs": runs,
        "chosen": chosen,
    }
    return research.write_study(__doc__, out, args.out, t0)


if __name__ == "__main__":
    main()
