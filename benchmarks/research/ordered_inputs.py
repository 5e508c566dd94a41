"""Is an ordered cell predicted differently from the disordered CIF it comes from (issue 24)?

Run as ``nice -n 10 .venv/bin/python benchmarks/research/ordered_inputs.py`` (about 5-10
minutes on one core with the defaults). Writes ``results/bench/ordered_inputs.json``.

The generation stage orders a disordered parent (lowest Ewald energy,
:func:`miscreen.verify.md_ordering.order_structure`) before substituting and relaxing it,
while the model learned on OBELiX's experimental CIFs, most of them with partial
occupancies (the ``full`` preset has site-occupancy features). This study asks whether the
ordered cell, as an input, is predicted systematically lower than the CIF it was ordered
from, on training data only: a seeded sample of OBELiX *training-split* rows with a
disordered CIF and a measured (uncensored) label, each ordered within the caps below
(rows whose ordering fails or runs past the time limit are left out and counted). The
test split is never read; the LGPS family (the hold-out of ``miscreen case lgps`` and
``lgps-family``: :func:`miscreen.cases.lgps.holdout_mask` and OBELiX's LGPS family) is
dropped before anything is fitted or sampled.

Out-of-fold predictions: DOI-grouped 5-fold CV (``miscreen.train.splits.new_chemistry_folds``,
shuffled by seed), the project's estimator (``ensemble``, as ``benchmarks/censored.py`` uses
it) on the ``full`` preset, fitted on every training row of the other folds (censored rows
at their bound, as the default run trains), then predicting each sampled row twice: (a) its
original CIF, (b) its ordered cell, unrelaxed. Reported: mean signed error and MAE of each
against the measured labels, the mean difference (b) - (a), each with a bootstrap 95 %
interval over the sampled rows.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
os.environ.setdefault("MISCREEN_MIRROR", str(REPO.parent / "shared" / "data"))
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from pymatgen.core import Structure  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from miscreen import atomic_io  # noqa: E402
from miscreen import schema as S  # noqa: E402
from miscreen.featurize import FeatureOptions, featurize_records  # noqa: E402
from miscreen.fetch.records import structure_record  # noqa: E402
from miscreen.store.structure_json import structure_from_json  # noqa: E402

OUT = REPO / "results" / "bench" / "ordered_inputs.json"
CACHE = REPO / "data" / "cache" / "features"
PRESET = "full"
ESTIMATOR_PARAMS = {"model__et__max_features": 0.5}  # the project's ensemble (issue 13)
MAX_ORDERINGS = 1e4  # above it, random orderings ranked by Ewald energy (order_structure)
MAX_SITES = 200  # disordered cells whose ordered cell would be larger are left out
ORDER_TIME_S = 20  # per structure
ORDERED_SUFFIX = ":ordered"
LGPS_FAMILY = "LGPS"
N_BOOT = 2000


def without_lgps_family(records: pd.DataFrame) -> pd.DataFrame:
    """The rows outside the LGPS hold-out of the lgps cases (never studied here)."""
    from miscreen.cases.lgps import holdout_mask

    held = holdout_mask(records, strict=False) | (records[S.FAMILY] == LGPS_FAMILY)
    return records[~held].reset_index(drop=True)


def is_disordered(structure_json: object) -> bool:
    """Whether a records row's structure JSON has partially occupied sites."""
    if not isinstance(structure_json, str):
        return False
    return not structure_from_json(structure_json).is_ordered


def sample_rows(records: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """``n`` (or fewer) rows with a disordered CIF and a measured label, a seeded sample
    in the records' order."""
    measured = ~records[S.CENSORED].astype(bool) & records[S.TARGET].notna()
    pool = records[measured & records[S.STRUCTURE].map(is_disordered)]
    return pool.sample(min(n, len(pool)), random_state=seed).sort_index()


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout


def ordered_cell(structure: Structure, time_s: int = ORDER_TIME_S) -> Structure | None:
    """The lowest-Ewald-energy ordering of ``structure`` within the caps, else None."""
    from miscreen.verify.md_ordering import order_structure

    if sum(sum(site.species.values()) for site in structure) > MAX_SITES:
        return None
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(time_s)
    try:
        ordered = order_structure(structure, max_orderings=MAX_ORDERINGS).structure
    except Exception:  # any failure to order leaves the row out, counted
        return None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    return ordered if len(ordered) <= 4 * MAX_SITES else None


def ordered_records(rows: pd.DataFrame, time_s: int = ORDER_TIME_S) -> pd.DataFrame:
    """Records rows of the ordered cells (id + ``:ordered``), the rows that do not order
    within ``time_s`` seconds each left out."""
    out = []
    for r in rows.to_dict("records"):
        cell = ordered_cell(structure_from_json(r[S.STRUCTURE]), time_s)
        if cell is not None:
            out.append(structure_record(f"{r[S.ID]}{ORDERED_SUFFIX}", str(r[S.SOURCE]), cell))
    return pd.DataFrame(out)


def bootstrap_mean(values: np.ndarray, seed: int, n_boot: int = N_BOOT) -> dict:
    """The mean and its bootstrap 95 % interval (percentiles of resampled means)."""
    values = np.asarray(values, float)
    rng = np.random.default_rng(seed)
    means = rng.choice(values, size=(n_boot, len(values)), replace=True).mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"mean": float(values.mean()), "ci95": [float(lo), float(hi)]}


def summary(y: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, seed: int) -> dict:
    """Signed error and MAE of (a) and (b) against ``y``, and the difference (b) - (a)."""
    err_a, err_b = pred_a - y, pred_b - y
    diff = bootstrap_mean(pred_b - pred_a, seed)
    a_signed, b_signed = bootstrap_mean(err_a, seed), bootstrap_mean(err_b, seed)
    lower = diff["ci95"][1] < 0 and abs(a_signed["mean"]) < abs(b_signed["mean"])
    return {
        "n": len(y),
        "original_cif": {"signed_error": a_signed, "mae": bootstrap_mean(np.abs(err_a), seed)},
        "ordered_cell": {"signed_error": b_signed, "mae": bootstrap_mean(np.abs(err_b), seed)},
        "difference_ordered_minus_original": diff,
        "ordered_biased_low": bool(lower),
    }


def oof_predictions(
    X: pd.DataFrame, y: np.ndarray, records: pd.DataFrame, X_ordered: pd.DataFrame,
    seed: int, trees: int,
) -> tuple[pd.Series, pd.Series]:  # fmt: skip
    """Out-of-fold predictions of every training row and of the ordered cells (each
    predicted by the fold that holds its original row out)."""
    from miscreen.train.estimators import make_regressor
    from miscreen.train.splits import new_chemistry_folds

    folds = new_chemistry_folds(records, seed, 5, shuffle=True)["doi"]
    ids = records[S.ID].astype(str).to_numpy()
    origin = X_ordered.index.str.removesuffix(ORDERED_SUFFIX)
    pred = pd.Series(np.nan, index=ids)
    pred_ordered = pd.Series(np.nan, index=X_ordered.index)
    Xv = X.to_numpy(float)
    for tr, te in folds:
        model = make_regressor("ensemble", trees, seed).set_params(**ESTIMATOR_PARAMS)
        with threadpool_limits(1):
            model.fit(Xv[tr], y[tr])
            pred.iloc[te] = model.predict(Xv[te])
            held = origin.isin(ids[te])
            if held.any():
                pred_ordered[held] = model.predict(X_ordered[held].to_numpy(float))
    return pred, pred_ordered


def main(argv: list[str] | None = None) -> dict:
    from miscreen.fetch.obelix import load_obelix

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--trees", type=int, default=200)
    ap.add_argument(
        "--order-seconds",
        type=int,
        default=ORDER_TIME_S,
        help="wall-clock limit of one ordering (a loaded machine orders fewer)",
    )
    args = ap.parse_args(argv)
    started = time.perf_counter()
    records, _ = load_obelix("train")
    records = without_lgps_family(records.reset_index(drop=True))
    opts = FeatureOptions(jobs=1, cache_dir=CACHE, time_limit=60)
    X, _, schema = featurize_records(records, PRESET, opts)
    records = records[records[S.ID].isin(X.index)].reset_index(drop=True)
    X = X.loc[records[S.ID]]
    y = records[S.TARGET].to_numpy(float)
    cens = records[S.CENSORED].astype(bool).to_numpy()
    y_train = np.where(cens, records["censor_bound"].to_numpy(float), y)
    sample = sample_rows(records, args.rows, args.seed)
    ordered = ordered_records(sample, args.order_seconds)
    print(f"{len(sample)} disordered rows sampled, {len(ordered)} ordered "
          f"({time.perf_counter() - started:.0f} s)")  # fmt: skip
    X_ord, fails, _ = featurize_records(ordered, PRESET, opts)
    X_ord = X_ord[list(schema.names)]
    pred, pred_ord = oof_predictions(X, y_train, records, X_ord, args.seed, args.trees)
    kept = pred_ord.dropna()
    origin = kept.index.str.removesuffix(ORDERED_SUFFIX)
    labels = records.set_index(S.ID)[S.TARGET].loc[origin].to_numpy(float)
    result = {
        "question": "is an ordered (Ewald-ordered, unrelaxed) cell predicted lower than its "
        "disordered CIF? OBELiX training split only, out of fold (DOI-grouped 5-fold)",
        "preset": PRESET,
        "trees": args.trees,
        "seed": args.seed,
        "lgps_family": "dropped before fitting and sampling (the lgps cases' hold-out)",
        "training_rows": len(records),
        "order_seconds": args.order_seconds,
        "sampled": len(sample),
        "ordered": len(ordered),
        "featurized": len(X_ord),
        "featurize_failures": len(fails),
        **summary(labels, pred.loc[origin].to_numpy(), kept.to_numpy(), args.seed),
        "rows": [
            {
                "id": o,
                "label": float(lab),
                "pred_original": float(pred[o]),
                "pred_ordered": float(p),
            }
            for o, lab, p in zip(origin, labels, kept.to_numpy(), strict=True)
        ],
        "runtime_s": round(time.perf_counter() - started, 1),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    atomic_io.write_json(OUT, result)
    for k in ("original_cif", "ordered_cell"):
        r = result[k]
        print(f"{k}: signed {r['signed_error']['mean']:+.3f} {r['signed_error']['ci95']}, "
              f"MAE {r['mae']['mean']:.3f}")  # fmt: skip
    d = result["difference_ordered_minus_original"]
    print(f"ordered - original: {d['mean']:+.3f} {d['ci95']}; biased low: "
          f"{result['ordered_biased_low']}; {result['runtime_s']} s")  # fmt: skip
    return result


if __name__ == "__main__":
    main()
