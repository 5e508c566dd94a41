"""Band-gap estimate benchmark: held-out error of ``miscreen.screen.band_gap`` on the
snapshot's known gaps.

Run as ``nice -n 10 .venv/bin/python benchmarks/band_gap.py``; writes
``results/bench/band_gap.json`` and prints it. The rows are the mp-2018 materials with a
known (PBE) band gap; a row's refractive index ``n`` comes from the matbench-dielectric row
of the same material (same reduced formula, volume per atom within 2 %), where there is one.
Five folds grouped by chemical system: every scored row's chemical system is absent from the
rows its estimator was fitted on (the estimator's own choices, by an inner grouped CV, see
only those rows).

Reported per estimate (``estimate``: what ``estimate_gaps`` serves, the composition model
alone, the refractive relation alone on rows with n) and for the baseline (the training
median, in the same folds): ``mae_ev``, ``accuracy_at_1ev`` (gap >= 1 eV classified
right), ``n``; for the estimate also the fraction of rows within one sd (68 % if the sd is
honest) and the Brier score of ``p_band_gap_above(1 eV)``. The same numbers on the
Li-containing rows (what the electrolyte screen sees).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "bench" / "band_gap.json"
SHARED = Path(os.environ.get("MISCREEN_MIRROR", REPO.parent / "shared" / "data"))
os.environ.setdefault("MISCREEN_MIRROR", str(SHARED))
THRESHOLD = 1.0
N_FOLDS = 5


def _load() -> pd.DataFrame:
    """mp-2018 rows with a known gap, with n joined from matbench-dielectric the way the
    main job joins it (``gap_training_rows``: same formula, volume per atom within 2 %)."""
    from miscreen.config import JsonlSource
    from miscreen.fetch.sources import load_references
    from miscreen.screen.band_gap import gap_training_rows

    refs = load_references(
        [
            JsonlSource(dataset="mp-2018", require_elements=()),
            JsonlSource(
                dataset="matbench-dielectric", id_field="row", id_prefix="mbd-", require_elements=()
            ),
        ]
    ).records
    return gap_training_rows(refs)


def _scores(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    ok = np.isfinite(pred)
    pred, y = pred[ok], y[ok]
    return {
        "mae_ev": float(np.mean(np.abs(pred - y))),
        "accuracy_at_1ev": float(np.mean((pred >= THRESHOLD) == (y >= THRESHOLD))),
        "n": int(ok.sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    from miscreen import schema as S
    from miscreen.screen.band_gap import (
        COMPOSITION_MODEL,
        REFRACTIVE_INDEX,
        estimate_gaps,
        fit_gap_model,
        gap_features,
        p_band_gap_above,
    )
    from miscreen.train.splits import chemsys_groups

    t0 = time.perf_counter()
    rows = _load()
    t_load = time.perf_counter() - t0
    feats = gap_features(rows)
    y = rows[S.BAND_GAP].astype(float).to_numpy()
    groups = chemsys_groups(rows[S.COMPOSITION])
    n_known = rows[REFRACTIVE_INDEX].notna().to_numpy()
    est = np.full(len(rows), np.nan)
    sd = np.full(len(rows), np.nan)
    comp_only = np.full(len(rows), np.nan)
    ref_only = np.full(len(rows), np.nan)
    p_above = np.full(len(rows), np.nan)
    baseline = np.full(len(rows), np.nan)
    methods = np.empty(len(rows), dtype=object)
    choices = []
    t_fit = 0.0
    for train, test in GroupKFold(n_splits=N_FOLDS).split(rows, y, groups):
        t1 = time.perf_counter()
        model = fit_gap_model(rows.iloc[train], features=feats)
        t_fit += time.perf_counter() - t1
        choices.append(
            {
                "with_n": model.with_n,
                "relation": model.refractive.relation if model.refractive else None,
                "cv_mae": model.cv_mae,
                "sd_scale": model.composition.sd_scale,
                "sd_scale_with_n": model.with_n_forest.sd_scale if model.with_n_forest else None,
            }
        )
        held = rows.iloc[test].drop(columns=[S.BAND_GAP])
        out = estimate_gaps(model, held, features=feats)
        est[test] = out[S.BAND_GAP]
        sd[test] = out[S.BAND_GAP_SD]
        methods[test] = out[S.BAND_GAP_METHOD]
        p_above[test] = p_band_gap_above(out, THRESHOLD)
        alone = estimate_gaps(model, held.drop(columns=[REFRACTIVE_INDEX]), features=feats)
        comp_only[test] = alone[S.BAND_GAP]
        if model.refractive is not None:
            has = n_known[test]
            ref_only[test[has]] = model.refractive.predict(held[REFRACTIVE_INDEX][has])
        baseline[test] = np.median(y[train])
    li = rows[S.COMPOSITION].str.contains(r"Li(?![a-z])", regex=True).to_numpy()

    def block(mask: np.ndarray) -> dict[str, object]:
        return {
            "estimate": {
                **_scores(est[mask], y[mask]),
                "within_1_sd": float(np.mean(np.abs(est[mask] - y[mask]) <= sd[mask])),
                "brier_p_above_1ev": float(np.mean((p_above[mask] - (y[mask] >= THRESHOLD)) ** 2)),
                "methods": pd.Series(methods[mask]).value_counts().to_dict(),
            },
            COMPOSITION_MODEL: _scores(comp_only[mask], y[mask]),
            "refractive_index_rows_with_n": _scores(ref_only[mask & n_known], y[mask & n_known]),
            "estimate_rows_with_n": _scores(est[mask & n_known], y[mask & n_known]),
            "baseline_train_median": _scores(baseline[mask], y[mask]),
        }

    result = {
        "rows": "mp-2018 with a known PBE gap; n joined from matbench-dielectric by formula+sg",
        "folds": f"{N_FOLDS}-fold GroupKFold by chemical system",
        "threshold_ev": THRESHOLD,
        "n": len(rows),
        "n_with_refractive_index": int(n_known.sum()),
        "all": block(np.ones(len(rows), bool)),
        "li_containing": block(li),
        "fold_choices": choices,
        "seconds": {"load": t_load, "fit_all_folds": t_fit, "total": time.perf_counter() - t0},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, default=float))
    tmp.replace(args.out)
    print(json.dumps(result, indent=2, default=float))


if __name__ == "__main__":
    main()
