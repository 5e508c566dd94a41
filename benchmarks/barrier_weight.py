"""BVSE barrier weight for the ranking, chosen by nested grouped CV on OBELiX (issue 22).

Run as ``nice -n 10 .venv/bin/python benchmarks/barrier_weight.py``; writes
``results/bench/barrier_weight.json`` and prints a summary. Only the OBELiX *training*
split is read; the test split is never opened.

The ranking adjusts a prediction ``mu`` (log10 sigma, S/cm) by the row's BVSE 3-D Li
barrier ``E`` (eV): ``mu' = mu - w * (E - E_ref)``, with ``E_ref`` the median barrier of the
rows ``w`` is chosen on, and a row with no 3-D path below the cutoff at the highest barrier
of the rows checked. This measures which ``w >= 0`` (grid 0, 0.25, ..., 4) helps:

- ``mu``: out-of-fold predictions of the default model (``configs/default.yaml``; the
  model the routing serves structure rows with) for the training rows with a CIF, from
  5-fold CV grouped by DOI and, separately, by chemical system (``ConformalRegressor``'s
  out-of-fold predictions, its folds grouped by ``train.splits``' groups);
- ``E``: ``miscreen.verify.barrier_table`` on those CIFs, cached in
  ``results/bench/barrier_weight_bvse.parquet`` (about 7 minutes on one core when cold;
  the predictions are cached beside it: ``--refresh`` after a model change); rows where
  BVSE fails (an anion without Li+ parameters: H-, P3-, C) are left out and counted;
  ``--cap EV`` clips barriers;
- nested CV over the CIF rows with the same grouping: ``w`` is picked by the inner folds'
  bound-aware MAE (``train.evaluate.bound_aware_mae``: a censored row counts as exact at or
  below its bound) and scored on the outer fold, paired with ``w = 0`` on the same fold
  (MAE, Spearman against the upstream labels, and the Brier score of P(sigma >= 1e-4 S/cm)
  from a normal around ``mu'`` whose scale is the robust spread of the residuals of the
  fitting rows' measured values). ``w_chosen`` is the inner-CV choice on all CIF rows (DOI
  grouping) when it lowers the outer MAE under both groupings by more than twice the
  standard error of the paired per-fold change, else 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.stats import norm, spearmanr
from sklearn.model_selection import GroupKFold

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "bench" / "barrier_weight.json"
BVSE_CACHE = REPO / "results" / "bench" / "barrier_weight_bvse.parquet"
OOF_CACHE = REPO / "results" / "bench" / "barrier_weight_oof.parquet"
SHARED = Path(os.environ.get("MISCREEN_MIRROR", REPO.parent / "shared" / "data"))
os.environ.setdefault("MISCREEN_MIRROR", str(SHARED))

from miscreen import schema as S  # noqa: E402
from miscreen.train.evaluate import bound_aware_mae  # noqa: E402
from miscreen.train.fit import doi_groups  # noqa: E402
from miscreen.train.splits import N_FOLDS, chemsys_groups  # noqa: E402

if TYPE_CHECKING:
    from miscreen.config import Config
    from miscreen.fetch.sources import Loaded

GRID = tuple(np.arange(0.0, 4.0 + 1e-9, 0.25).round(2).tolist())
SCHEMES = ("doi", "chemsys")
FAST_LOG10 = -4.0  # P(sigma >= 1e-4 S/cm)
Array = np.ndarray
Folds = list[tuple[Array, Array]]


def adjusted(mu: np.ndarray, e3d: np.ndarray, w: float, e_ref: float) -> np.ndarray:
    """``mu - w * (E - E_ref)``."""
    return mu - w * (e3d - e_ref)


def fill_no_path(e3d: np.ndarray) -> np.ndarray:
    """Barriers with a missing 3-D path (NaN) at the highest barrier of the rows."""
    return np.where(np.isfinite(e3d), e3d, np.nanmax(e3d))


def weight_mae(
    labels: pd.DataFrame, mu: np.ndarray, e3d: np.ndarray, w: float, e_ref: float
) -> float:
    """Bound-aware MAE of ``mu'`` against ``labels`` (``log10_sigma``, ``censored``,
    ``censor_bound``)."""
    return bound_aware_mae(labels.assign(**{S.PRED: adjusted(mu, e3d, w, e_ref)}))


def select_weight(
    labels: pd.DataFrame,
    mu: np.ndarray,
    e3d: np.ndarray,
    folds: Folds,
    grid: tuple[float, ...] = GRID,
) -> float:
    """The ``w`` of ``grid`` with the lowest mean bound-aware MAE over ``folds`` (``E_ref``
    the median barrier of each fold's fitting rows); ties go to the smaller ``w``."""
    scores = []
    for w in grid:
        maes = [
            weight_mae(labels.iloc[test], mu[test], e3d[test], w, float(np.median(e3d[train])))
            for train, test in folds
        ]
        scores.append((float(np.mean(maes)), w))
    return min(scores)[1]


def scheme_groups(labels: pd.DataFrame, scheme: str) -> np.ndarray:
    """Each row's CV group: its publication (``doi``) or its chemical system (``chemsys``),
    as ``miscreen.train.splits`` defines them."""
    if scheme == "doi":
        return doi_groups(labels.set_index(S.ID))
    return chemsys_groups(labels[S.COMPOSITION])


def grouped_folds(groups: np.ndarray) -> Folds:
    """``GroupKFold(5)`` over the rows' positions, as ``new_chemistry_folds`` cuts them."""
    return list(GroupKFold(N_FOLDS).split(groups, groups=groups))


def fold_scores(
    labels: pd.DataFrame, mu: Array, e3d: Array, train: Array, test: Array, w: float
) -> tuple[dict[str, float], Array]:
    """MAE, Spearman and Brier of ``w`` on ``test`` (``E_ref`` and the spread from
    ``train``), and the predictions ``mu'`` of ``test``."""
    e_ref = float(np.median(e3d[train]))
    measured = train[~labels[S.CENSORED].astype(bool).to_numpy()[train]]
    fit = adjusted(mu[measured], e3d[measured], w, e_ref)
    residual = fit - labels[S.TARGET].to_numpy(float)[measured]
    scale = max(1.4826 * float(np.median(np.abs(residual))), 1e-6)  # robust sd
    pred = adjusted(mu[test], e3d[test], w, e_ref)
    y = labels[S.TARGET].to_numpy(float)[test]
    return {
        "mae": weight_mae(labels.iloc[test], mu[test], e3d[test], w, e_ref),
        "spearman": float(spearmanr(pred, y).statistic),
        "brier": float(np.mean((norm.sf(FAST_LOG10, pred, scale) - (y >= FAST_LOG10)) ** 2)),
    }, pred


def nested_cv(labels: pd.DataFrame, mu: Array, e3d: Array, groups: Array) -> dict:
    """Outer folds grouped by ``groups``; ``w`` chosen on each outer fold's inner folds."""
    folds: list[dict] = []
    pooled = {"w0": np.full(len(mu), np.nan), "chosen": np.full(len(mu), np.nan)}
    for train, test in grouped_folds(groups):
        w = select_weight(labels.iloc[train], mu[train], e3d[train], grouped_folds(groups[train]))
        fold: dict = {"w": w, "n": len(test)}
        for name, weight in (("w0", 0.0), ("chosen", w)):
            fold[name], pooled[name][test] = fold_scores(labels, mu, e3d, train, test, weight)
        folds.append(fold)
    y = labels[S.TARGET].to_numpy(float)
    out: dict = {"folds": folds}
    for name, pred in pooled.items():
        out[f"mae_{name}"] = bound_aware_mae(labels.assign(**{S.PRED: pred}))
        out[f"spearman_{name}"] = float(spearmanr(pred, y).statistic)
        out[f"brier_{name}"] = float(np.mean([f[name]["brier"] for f in folds]))
    diffs = np.array([f["chosen"]["mae"] - f["w0"]["mae"] for f in folds])
    out["mae_change_per_fold"] = diffs.tolist()
    out["mae_change_mean"] = float(diffs.mean())
    out["mae_change_se"] = float(diffs.std(ddof=1) / np.sqrt(len(diffs)))
    out["folds_better"] = int((diffs < 0).sum())
    m = ~labels[S.CENSORED].astype(bool).to_numpy()  # measured rows
    r = y - mu  # what the barrier could still explain
    out["spearman_barrier_residual"] = float(spearmanr(e3d, r).statistic)
    out["spearman_barrier_residual_measured"] = float(spearmanr(e3d[m], r[m]).statistic)
    return out


def adopted(result: dict) -> bool:
    """Adopt a weight only when it lowers the outer MAE under every grouping by more than
    twice the standard error of the paired per-fold change."""
    return all(result[s]["mae_change_mean"] < -2 * result[s]["mae_change_se"] for s in SCHEMES)


def out_of_fold(cfg: Config, loaded: Loaded) -> pd.DataFrame:
    """Out-of-fold predictions (``mu_doi``, ``mu_chemsys``) of the model that serves
    structure rows (trained on ``loaded``, the training split), for every training row it
    featurizes, indexed by id."""
    from sklearn.base import clone

    from miscreen import pipeline
    from miscreen.featurize import featurize_records
    from miscreen.fetch.labels import apply_censoring
    from miscreen.train.routing import STRUCTURE_ROWS

    models = pipeline.train(cfg, loaded)
    served = models.for_kind(STRUCTURE_ROWS)
    labelled = apply_censoring(loaded.records, cfg.data.censored)  # type: ignore[arg-type]
    options = pipeline.feature_options(cfg)  # the feature cache makes this cheap now
    table = featurize_records(labelled, served.meta["preset"], options)[0]
    labels = labelled.set_index(S.ID).loc[table.index]
    X, y = table.to_numpy(float), labels[S.TARGET].to_numpy(float)
    chem = clone(served.estimator).fit(X, y, groups=chemsys_groups(labels[S.COMPOSITION]))
    mu = {"mu_doi": served.estimator.oof_predictions_, "mu_chemsys": chem.oof_predictions_}
    return pd.DataFrame({"model": served.meta["model"], **mu}, index=table.index.astype(str))


def cached(
    path: Path, ids: pd.Series, compute: Callable[[], pd.DataFrame], refresh: bool
) -> pd.DataFrame:
    """The table at ``path`` when it covers ``ids``; else ``compute()``, written there."""
    from miscreen import atomic_io

    if path.exists() and not refresh:
        table = atomic_io.read_table(path).set_index(S.ID)
        if set(ids) <= set(table.index):
            return table
    table = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_io.write_table(table.rename_axis(S.ID).reset_index(), path)
    return table


def barriers(rows: pd.DataFrame) -> pd.DataFrame:
    """``bvse_e3d_ev`` per id (NaN: no 3-D path) and ``failure`` (empty when computed)."""
    from miscreen.verify import BVSE_E3D, barrier_table

    start = time.perf_counter()
    table, failures = barrier_table(rows)
    seconds = time.perf_counter() - start
    out = pd.DataFrame(index=rows[S.ID].astype(str))
    out[BVSE_E3D] = table[BVSE_E3D].reindex(out.index)
    reasons = failures.drop_duplicates(S.ID).set_index(S.ID)["reason"]
    out["failure"] = reasons.reindex(out.index).fillna("")
    out["seconds_total"] = seconds
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "default.yaml")
    parser.add_argument("--refresh", action="store_true", help="recompute the caches")
    parser.add_argument("--cap", type=float, default=None, help="clip barriers at CAP eV")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    from miscreen import atomic_io
    from miscreen.config import load_config
    from miscreen.fetch.sources import load_labelled
    from miscreen.verify import BVSE_E3D

    start = time.perf_counter()
    cfg = load_config(args.config)
    cfg = cfg.model_copy(update={"features": cfg.features.model_copy(update={"jobs": 1})})
    loaded = load_labelled(cfg, "train")
    records = loaded.records.reset_index(drop=True)
    cif = records[S.has_structure(records)].reset_index(drop=True)
    ids = cif[S.ID].astype(str)
    bvse = cached(BVSE_CACHE, ids, lambda: barriers(cif), args.refresh)
    oof = cached(OOF_CACHE, ids, lambda: out_of_fold(cfg, loaded), args.refresh)
    ok = (bvse.loc[ids, "failure"] == "").to_numpy() & ids.isin(oof.index).to_numpy()
    rows = cif[ok].reset_index(drop=True)
    rid = rows[S.ID].astype(str)
    raw = bvse.loc[rid, BVSE_E3D].to_numpy(float)
    e3d = np.minimum(fill_no_path(raw), args.cap or np.inf)
    result: dict = {
        "n": len(rows),
        "n_cif_rows": len(cif),
        "n_bvse_failed": int((~ok).sum()),
        "n_no_3d_path": int(np.isnan(raw).sum()),
        "e_no_path_ev": float(np.nanmax(raw)),
        "e_ref": float(np.median(e3d)),
        "cap_ev": args.cap,
        "grid": list(GRID),
        "model": str(oof["model"].iloc[0]),
        "bvse_s_per_structure": float(bvse["seconds_total"].iloc[0]) / len(bvse),
    }
    for scheme in SCHEMES:
        mu = oof.loc[rid, f"mu_{scheme}"].to_numpy(float)
        groups = scheme_groups(rows, scheme)
        result[scheme] = nested_cv(rows, mu, e3d, groups)
        result[scheme]["w_all_rows"] = select_weight(rows, mu, e3d, grouped_folds(groups))
    result["adopted"] = adopted(result)
    result["w_chosen"] = result["doi"]["w_all_rows"] if result["adopted"] else 0.0
    result["seconds"] = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_io.write_json(args.out, result)
    print(
        f"n {result['n']} CIF rows ({result['n_no_3d_path']} without a 3-D path, "
        f"{result['n_bvse_failed']} BVSE failures left out); w_chosen {result['w_chosen']} "
        f"(inner-CV choice on all rows by DOI {result['doi']['w_all_rows']}, adopted: "
        f"{result['adopted']}), E_ref {result['e_ref']:.3f} eV"
    )
    for scheme in SCHEMES:
        r = result[scheme]
        print(
            f"{scheme}: outer MAE {r['mae_w0']:.3f} -> {r['mae_chosen']:.3f} "
            f"(ratio {r['mae_chosen'] / r['mae_w0']:.3f}; per fold {r['mae_change_mean']:+.3f} "
            f"+- {r['mae_change_se']:.3f}, {r['folds_better']}/5 better), "
            f"Spearman {r['spearman_w0']:.3f} -> {r['spearman_chosen']:.3f}, "
            f"Brier {r['brier_w0']:.3f} -> {r['brier_chosen']:.3f}, "
            f"w per fold {[f['w'] for f in r['folds']]}, w on all rows {r['w_all_rows']}; "
            f"Spearman(E, y - mu) on measured rows {r['spearman_barrier_residual_measured']:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
