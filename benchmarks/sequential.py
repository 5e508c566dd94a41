"""Sequential learning on OBELiX with the labels hidden: how many measurements does each
acquisition function need to find fast Li-ion conductors, against random picks?

Run as ``.venv/bin/python benchmarks/sequential.py`` (part of ``make bench``; about 6
minutes on one core). Every campaign starts from 10 random rows without a fast conductor
(the same 10 for every function at a given seed), then measures batches of 5 (at most one
per chemical system) chosen from a 50-tree forest's mean and tree spread (``--model``:
random forest by default, or the median extra trees of the project's ensemble), with the
composition-only model's features (``featurize`` preset ``composition``: Magpie statistics,
stoichiometry, element fractions and oxidation-state descriptors; ``--preset cell``
adds OBELiX's cell columns). Targets: the first fast
conductor (sigma >= 1e-3 S/cm) and 5 of the top 5 % of log10 sigma. Counts include the
initial 10. ``mei`` (highest prediction) is pure exploitation; ``random`` needs no model.
Campaigns stop once both targets are found, or after ``--cap`` measurements (then the
target counts as not reached, i.e. more than the cap).

Physics prior (``--prior physics``, the default; issue 23): every learned function gets a
cold start and three more features from :mod:`miscreen.suggest.prior`, none of which sees a
conductivity. Until a fast conductor is measured the pool is ranked by the label-free prior
(mean percentile rank of the anion polarizability, the Li fraction and, for rows with a CIF,
the BVSE 3-D Li barrier computed from the CIF alone, see :func:`load_barriers`); after
that by the function, on a model that also sees those three components, and the scores of
``mli`` and ``ei`` are multiplied by the prior (:func:`miscreen.suggest.prior.weight_by_prior`,
as ``miscreen suggest`` does; ``simulate_campaign(..., weighted=True)``).
``mli_cold_start_only`` is ``mli`` with the cold start and the prior features but no
weighting (the method until 2026-12-05);
``mli_no_prior`` and ``mei_no_prior`` are the functions without any prior. The first method
(``mli`` with cold start and prior features) was stated before any campaign ran; the
weighting was adopted after ``benchmarks/research/sequential_variants.py`` compared about
30 variants on a random half of the rows (``--half A``), on the disjoint half
(``--half B``) and on all rows, 20 and 40 seeds: the weighted ``mli`` needed fewer
measurements on average on each (40 seeds: 53 vs 62 on all rows, 56 vs 72 on A, 40 vs 53
on B; paired by seed clearly on both halves, Wilcoxon p = 0.003 and 1e-5, but not on all
rows, p = 0.15).

Censored conductivities (``<1E-10``) are very poor conductors: at their stated bound, the
project default (``data.censored: bound``), or with ``--censored floor`` at -15 as upstream.
Writes ``results/bench/sequential.json`` and ``sequential.png`` (``--tag`` adds a suffix).
Data: OBELiX (Therrien et al., Digital Discovery 2026, CC BY 4.0). Method: Ling et al.,
Integrating Materials and Manufacturing Innovation 6, 207 (2017).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for benchmarks.research

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu
from threadpoolctl import threadpool_limits

from benchmarks.research.simulate import FAST_LOG10, MODELS, Target, simulate_campaign
from miscreen import schema as S
from miscreen.featurize import featurize_records
from miscreen.fetch.obelix import load_obelix
from miscreen.suggest import ACQUISITIONS
from miscreen.suggest.prior import COMPONENTS, PRIOR_WEIGHTED, prior_components, prior_score
from miscreen.train.splits import chemical_system

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "bench"
TARGETS = ("first_fast", "top5pct_5")
INIT, BATCH, TREES = 10, 5, 50
BVSE_REUSED = OUT / "barrier_weight_bvse.parquet"  # benchmarks/barrier_weight.py's rows
BVSE = OUT / "sequential_bvse.parquet"  # every OBELiX row with a CIF; from the CIFs alone
METHOD = "mli"  # the method stated before any campaign ran: mli with the physics prior
NO_PRIOR = ("mli", "mei")  # run again without the prior, as references
HALF_SEED = 2026  # the random halves of the rows (A: choosing, B: the disjoint check)


def load(
    censored: str, preset: str
) -> tuple[np.ndarray, np.ndarray, list[str], pd.DataFrame, dict[str, object]]:
    """OBELiX 'all' -> (features, log10 sigma with the censoring applied, chemical systems,
    the prior's components (no label enters them), data notes)."""
    records, failures = load_obelix("all", with_structures=False)
    if len(failures):
        raise RuntimeError(f"OBELiX rows failed to load: {failures.to_dict('records')[:3]}")
    features, ffail, _ = featurize_records(records, preset)
    if len(ffail):
        raise RuntimeError(f"featurizing failed for {len(ffail)} rows: {ffail.head(3)}")
    records = records.set_index(S.ID).loc[features.index]
    y = records[S.TARGET].to_numpy(dtype=float).copy()
    cens = records[S.CENSORED].to_numpy(dtype=bool)
    if censored == "bound":
        y[cens] = records["censor_bound"].to_numpy(dtype=float)[cens]
    systems = [chemical_system(c) for c in records[S.COMPOSITION]]
    barriers = load_barriers().reindex(records.index).to_numpy(dtype=float)
    components = prior_components(records[S.COMPOSITION], barriers)
    notes = {
        "rows": len(y),
        "censored_rows": int(cens.sum()),
        "censored_as": censored,
        "features": features.shape[1],
        "chemical_systems": len(set(systems)),
        "rows_with_bvse_barrier": int(components["barrier"].notna().sum()),
    }
    return features.to_numpy(dtype=float), y, systems, components, notes


def load_barriers() -> pd.Series:
    """BVSE 3-D Li barrier (eV) of every OBELiX row with a CIF, by id; a structure with no
    3-D path gets the highest barrier found, a failed one (no Li+ parameters for its
    anion) none. Computed from the CIFs alone (``miscreen.verify.barrier_table``, no label
    read), reusing ``benchmarks/barrier_weight.py``'s cache for the rows it holds; cached
    in ``sequential_bvse.parquet`` (a few minutes on one core when cold)."""
    if not BVSE.is_file():
        from benchmarks.barrier_weight import barriers

        records, _ = load_obelix("all", with_structures=True)
        with_cif = records[records[S.STRUCTURE].notna()]
        parts = []
        if BVSE_REUSED.is_file():
            reused = pd.read_parquet(BVSE_REUSED).set_index(S.ID)
            parts.append(reused[reused.index.isin(with_cif[S.ID])])
        done = set(parts[0].index) if parts else set()
        todo = with_cif[~with_cif[S.ID].isin(done)]
        if len(todo):
            parts.append(barriers(todo))
        table = pd.concat(parts)[["bvse_e3d_ev", "failure"]].rename_axis(S.ID)
        tmp = BVSE.with_suffix(".tmp.parquet")
        table.reset_index().to_parquet(tmp)
        tmp.replace(BVSE)
    table = pd.read_parquet(BVSE).set_index(S.ID)
    e3d = table["bvse_e3d_ev"].astype(float)
    no_path = e3d.isna() & (table["failure"].fillna("") == "")
    return e3d.where(~no_path, e3d.max())


def half_rows(n: int, half: str) -> np.ndarray:
    """Row positions of ``half`` ('all', or 'A'/'B': a fixed random half and the rest)."""
    if half == "all":
        return np.arange(n)
    perm = np.random.default_rng(HALF_SEED).permutation(n)
    return np.sort(perm[: n // 2] if half == "A" else perm[n // 2 :])


def summarise(values: list[float], cap: int) -> dict[str, float | int | None]:
    """Median, quartiles and the count of campaigns that never reached the target (those
    count as ``cap + 1``, so a statistic above the cap is a lower bound)."""
    a = np.asarray(values, dtype=float)
    q25, q50, q75 = np.percentile(a, [25, 50, 75])
    ok = a <= cap
    return {
        "median": float(q50),
        "q25": float(q25),
        "q75": float(q75),
        "mean_of_reached": float(a[ok].mean()) if ok.any() else None,
        "not_reached": int((~ok).sum()),
    }


def acceleration(
    rand: np.ndarray, acq: np.ndarray, offset: int, rng: np.random.Generator
) -> dict[str, float]:
    """median(random) / median(acq), with a bootstrap interval over seeds and the per-seed
    paired ratios (same initial set); ``offset`` measurements are subtracted first."""
    r, a = rand - offset, acq - offset
    point = float(np.median(r) / np.median(a))
    boots = []
    for _ in range(2000):
        i = rng.integers(0, len(r), len(r))
        j = rng.integers(0, len(a), len(a))
        boots.append(np.median(r[i]) / np.median(a[j]))
    paired = r / a
    return {
        "ratio_of_medians": point,
        "bootstrap_5": float(np.percentile(boots, 5)),
        "bootstrap_95": float(np.percentile(boots, 95)),
        "paired_median": float(np.median(paired)),
        "paired_q25": float(np.percentile(paired, 25)),
        "paired_q75": float(np.percentile(paired, 75)),
    }


def curves(results: dict[str, list], cap: int, target: str, needed: int) -> dict:
    """Per function: targets found after n measurements, per seed (held after a stop)."""
    grid = np.arange(INIT, cap + 1)
    out = {}
    for name, runs in results.items():
        rows = []
        for res in runs:
            c = res.curve()
            found = np.interp(grid, c["n_measured"], c[target], right=np.nan)
            found = np.floor(found)  # step: a batch's finds count once it is measured
            last = c[target].iloc[-1]
            found[grid > c["n_measured"].iloc[-1]] = last
            rows.append(np.minimum(found, needed) if needed else found)
        out[name] = (grid, np.asarray(rows))
    return out


def plot(results: dict[str, list], reached: dict, cap: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    top = curves(results, cap, "top5pct_5", 0)
    for name, (grid, found) in top.items():
        med = np.median(found, axis=0)
        line = axes[0].step(grid, med, where="post", label=name)[0]
        lo, hi = np.percentile(found, [25, 75], axis=0)
        axes[0].fill_between(grid, lo, hi, step="post", alpha=0.12, color=line.get_color())
        share = [(np.asarray(reached[name]["top5pct_5"]) <= n).mean() for n in grid]  # cap+1: never
        axes[1].step(grid, share, where="post", label=name, color=line.get_color())
    axes[0].set(
        xlabel="measurements (initial 10 included)",
        ylabel="top-5 % materials found (median, IQR)",
        title="Found vs measured (campaigns stop at 5)",
    )
    axes[0].axhline(5, color="grey", lw=0.6, ls=":")
    axes[1].set(
        xlabel="measurements (initial 10 included)",
        ylabel="share of seeds with 5 of the top 5 % found",
        title="OBELiX, labels hidden (prior on unless _no_prior)",
    )
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def functions(prior: str, only: list[str] | None) -> list[tuple[str, str, str]]:
    """(name in the results, acquisition, prior use) for every function to run; the prior
    use is "weighted" (cold start, features and the weighting of ``mli``/``ei``),
    "cold_start" (cold start and features only) or "none"."""
    physics = prior == "physics"
    out = [(a, a, "weighted" if physics and a != "random" else "none") for a in ACQUISITIONS]
    if physics:
        out.append((f"{METHOD}_cold_start_only", METHOD, "cold_start"))
        out += [(f"{a}_no_prior", a, "none") for a in NO_PRIOR]
    return [f for f in out if only is None or f[0] in only or f[0] == "random"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--cap", type=int, default=200, help="most measurements per campaign")
    ap.add_argument("--censored", choices=("floor", "bound"), default="bound")
    ap.add_argument("--preset", choices=("composition", "cell"), default="composition")
    ap.add_argument("--model", choices=MODELS, default="random_forest")
    ap.add_argument("--diversity", choices=("chemsys", "none"), default="chemsys")
    ap.add_argument("--prior", choices=("physics", "none"), default="physics")
    ap.add_argument("--half", choices=("all", "A", "B"), default="all")
    ap.add_argument("--only", nargs="*", help="run only these functions (random always runs)")
    ap.add_argument("--tag", default="", help="suffix of the output files")
    args = ap.parse_args()
    os.environ.setdefault("MISCREEN_MIRROR", str((REPO.parent / "shared" / "data").resolve()))

    t0 = time.perf_counter()
    X, y, systems, components, notes = load(args.censored, args.preset)
    rows = half_rows(len(y), args.half)
    X, y, components = X[rows], y[rows], components.iloc[rows].reset_index(drop=True)
    systems = [systems[i] for i in rows]
    prior = prior_score(components)  # computed from compositions and CIFs only
    X_prior = np.hstack([X, components[list(COMPONENTS)].to_numpy(dtype=float)])
    top = y >= np.quantile(y, 0.95)
    targets = [Target("first_fast", y >= FAST_LOG10, 1), Target("top5pct_5", top, 5)]
    if args.half != "all":
        notes.pop("censored_rows")  # counted on the whole table
    notes.update(
        half=args.half,
        rows=len(y),
        chemical_systems=len(set(systems)),
        rows_with_bvse_barrier=int(components["barrier"].notna().sum()),
        fast_rows=int((y >= FAST_LOG10).sum()),
        top5pct_rows=int(top.sum()),
        top5pct_threshold_log10=float(np.quantile(y, 0.95)),
    )
    print(f"OBELiX: {notes}")
    groups = systems if args.diversity == "chemsys" else None
    plan = functions(args.prior, args.only)
    names = [f[0] for f in plan]

    results: dict[str, list] = {}
    reached: dict[str, dict[str, list[float]]] = {}
    seconds: dict[str, float] = {}
    for name, acq, use in plan:
        t = time.perf_counter()
        runs = []
        for seed in range(args.seeds):
            cap = len(y) if acq == "random" else args.cap  # random needs no model: no cap
            guided = use != "none"
            run = simulate_campaign(
                X_prior if guided else X,
                y,
                groups,
                acq,
                seed=seed,
                init_size=INIT,
                batch=BATCH,
                targets=targets,
                max_measured=cap,
                model=args.model,
                n_estimators=TREES,
                prior=prior if guided else None,
                weighted=use == "weighted",
            )
            runs.append(run)
        results[name] = runs
        reached[name] = {  # not reached within the cap: counted as cap + 1 ("more than")
            k: [float(args.cap + 1 if r.reached[k] is None else r.reached[k]) for r in runs]
            for k in TARGETS
        }
        seconds[name] = time.perf_counter() - t
        med = {k: float(np.median(v)) for k, v in reached[name].items()}
        print(f"{name:>13}: median measurements {med}  ({seconds[name]:.0f} s)", flush=True)

    rng = np.random.default_rng(0)
    per_function = {}
    for name in names:
        entry: dict[str, object] = {
            k: summarise(reached[name][k], len(y) if name == "random" else args.cap)
            for k in TARGETS
        }
        if name != "random":
            for k in TARGETS:
                rand, acq = np.asarray(reached["random"][k]), np.asarray(reached[name][k])
                entry[k]["acceleration_vs_random"] = acceleration(rand, acq, 0, rng)
                entry[k]["acceleration_after_initial_set"] = acceleration(rand, acq, INIT, rng)
        entry["seconds"] = round(seconds[name], 1)
        per_function[name] = entry

    key = "top5pct_5"

    def median(n: str) -> float:
        return float(np.median(reached[n][key]))

    learned = [n for n in names if n != "random"]
    best = min(learned, key=lambda n: (median(n), np.mean(reached[n][key])))
    method = METHOD if METHOD in names else best
    exploit = [n for n in ("mei", "mei_no_prior") if n in names]
    acc = per_function[method][key]["acceleration_vs_random"]
    versus = {
        n: {
            "median": median(n),
            "method_median": median(method),
            "mannwhitney_p_method_less": float(
                mannwhitneyu(reached[method][key], reached[n][key], alternative="less").pvalue
            ),
        }
        for n in exploit
    }
    summary = {
        "target": "measurements to find 5 of the top 5 % of log10 sigma (initial set included)",
        "method": method,
        "method_description": (
            "mli on a 50-tree forest; cold start, three extra features and, after the cold "
            "start, mli scores multiplied by a label-free physics prior (anion "
            "polarizability, Li fraction, BVSE barrier where a CIF gave one; "
            "miscreen.suggest.prior)"
            if args.prior == "physics"
            else "mli on a 50-tree forest, no prior"
        ),
        "acceleration_vs_random": acc["ratio_of_medians"],
        "acceleration_vs_random_bootstrap_5_95": [acc["bootstrap_5"], acc["bootstrap_95"]],
        "acceleration_vs_random_spread": acc,
        "meets_3x": bool(acc["ratio_of_medians"] >= 3.0),
        "beats_exploitation": bool(exploit) and all(median(method) < median(n) for n in exploit),
        "versus_exploitation": versus,
        "best_acquisition": best,
        "best_acquisition_acceleration_vs_random": per_function[best][key][
            "acceleration_vs_random"
        ]["ratio_of_medians"],
        "medians": {n: {k: per_function[n][k]["median"] for k in TARGETS} for n in names},
        "per_function": per_function,
        "reached_per_seed": {
            n: {k: [int(v) for v in reached[n][k]] for k in TARGETS} for n in names
        },
        "setup": {
            **notes,
            "seeds": args.seeds,
            "initial_set": INIT,
            "batch": BATCH,
            "diversity": args.diversity,
            "model": f"{args.model}, {TREES} trees; sd = tree spread",
            "feature_preset": args.preset,
            "prior": args.prior,
            "prior_components": list(COMPONENTS),
            "prior_weighted_acquisitions": sorted(PRIOR_WEIGHTED)
            if args.prior == "physics"
            else [],
            "cap_measurements": args.cap,
            "fast_log10": FAST_LOG10,
            "seconds": round(time.perf_counter() - t0, 1),
        },
        "citations": [
            "Ling et al., Integrating Materials and Manufacturing Innovation 6, 207 (2017)",
            "Therrien et al., OBELiX, Digital Discovery (2026), arXiv 2502.14234; CC BY 4.0",
            "Bachman et al., Chem. Rev. 116, 140 (2016) (soft anion frameworks)",
        ],
    }
    OUT.mkdir(parents=True, exist_ok=True)
    suffix = f"_{args.tag}" if args.tag else ""
    json_path = OUT / f"sequential{suffix}.json"
    tmp = json_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    tmp.replace(json_path)
    plot(results, reached, args.cap, OUT / f"sequential{suffix}.png")

    print(f"\nmeasurements to find 5 of the top 5 % (median [IQR], not reached / {args.seeds}):")
    for n in names:
        s = per_function[n][key]
        extra = ""
        if n != "random":
            a = s["acceleration_vs_random"]
            extra = (
                f"  x{a['ratio_of_medians']:.2f} vs random "
                f"(bootstrap 5-95 % {a['bootstrap_5']:.2f}-{a['bootstrap_95']:.2f})"
            )
        print(
            f"  {n:>13}: {s['median']:.0f} [{s['q25']:.0f}, {s['q75']:.0f}], "
            f"{s['not_reached']} not reached{extra}"
        )
    print(
        f"method: {method}, acceleration_vs_random {summary['acceleration_vs_random']:.2f} "
        f"(target 3); beats exploitation: {summary['beats_exploitation']} {versus}; "
        f"{summary['setup']['seconds']:.0f} s -> {json_path}"
    )


if __name__ == "__main__":
    with threadpool_limits(1):
        main()
