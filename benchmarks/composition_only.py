"""Compositions only, as a user with a list of formulas would bring them (issue 13).

Through the command line only: writes OBELiX's training rows as a CSV of ``composition`` and
the measured conductivity in S/cm (``<1E-10`` kept as written), trains on it with
``miscreen train --data`` (the baseline, measured in the same script), and predicts the 121
official test rows, given as the same kind of CSV without labels, with that model and with
the models of a run (``miscreen train CONFIG``, trained here into a temporary folder; or an
existing model folder given by ``--model``). Scores: MAE (censored rows at -15, as
upstream), bound-aware MAE and Spearman against the upstream labels. About 3 minutes.

    .venv/bin/python benchmarks/composition_only.py [--config configs/default.yaml | --model DIR]

-> results/bench/composition_only.json (``run_model`` and ``train_data_model`` metrics, and
``run_model_at_least_as_good``: the run's model's MAE is not above the baseline's).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from miscreen import schema as S
from miscreen.fetch.labels import parse_sigma
from miscreen.train.evaluate import bound_aware_mae, regression_metrics

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "bench" / "composition_only.json"
MIRROR = Path(os.environ.get("MISCREEN_MIRROR", REPO.parent / "shared" / "data"))
SIGMA = "Ionic conductivity (S cm-1)"


def write_csv(rows: pd.DataFrame, path: Path, labelled: bool) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "composition", *(["sigma"] if labelled else [])])
        for r in rows.itertuples():
            w.writerow([r.ID, r.composition, *([r.sigma] if labelled else [])])


def miscreen(*args: str) -> None:
    exe = Path(sys.executable).with_name("miscreen")
    subprocess.run(
        [str(exe), *args], check=True, env={**os.environ, "MISCREEN_MIRROR": str(MIRROR)}
    )


def train_run(config: Path, work: Path) -> Path:
    """Train ``config``'s models into ``work`` (results and models) -> the model folder."""
    raw = yaml.safe_load(config.read_text())
    raw |= {"results_dir": str(work / "results"), "models_dir": str(work / "models")}
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    miscreen("train", str(path))
    return work / "models" / raw.get("run_name", "default")


def upstream_labels(sigma: pd.Series) -> pd.DataFrame:
    """Labels as the pipeline reads them: log10 sigma (censored rows at -15), censored,
    log10 bound."""
    rows = [parse_sigma(v) for v in sigma]
    return pd.DataFrame(rows, columns=[S.TARGET, S.CENSORED, S.CENSOR_BOUND])


def metrics(pred: np.ndarray, labels: pd.DataFrame) -> dict:
    """MAE, RMSE, R², Spearman and n, plus the bound-aware MAE, with the pipeline's own
    metric functions."""
    scored = labels.assign(**{S.PRED: pred})
    out = regression_metrics(labels[S.TARGET].to_numpy(float), pred)
    return out | {"mae_bound_aware": bound_aware_mae(scored)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "default.yaml")
    parser.add_argument("--model", type=Path, help="a trained model folder instead of --config")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.model is not None and not (args.model / "routing.json").is_file():
        sys.exit(f"{args.model} holds no trained models (no routing.json)")
    obelix = MIRROR / "obelix"
    train, test = (
        pd.read_csv(obelix / f"{s}.csv", dtype={"ID": str}, keep_default_na=False).rename(
            columns={"True Composition": "composition", SIGMA: "sigma"}
        )
        for s in ("train", "test")
    )
    labels = upstream_labels(test["sigma"])
    run = str(args.model) if args.model else f"miscreen train {args.config}"
    result: dict = {"test_rows": len(test), "train_rows": len(train), "run_model_from": run}
    with tempfile.TemporaryDirectory(prefix="miscreen-bench-comp-") as tmp:
        work = Path(tmp)
        model = args.model or train_run(args.config, work)
        write_csv(train, work / "train.csv", labelled=True)
        write_csv(test, work / "test.csv", labelled=False)
        data = ["--data", str(work / "train.csv"), "--target", "sigma"]
        miscreen("train", *data, "--out", str(work / "train-data"))
        for name, folder in (("train_data_model", work / "train-data"), ("run_model", model)):
            out = work / f"{name}.csv"
            miscreen(
                "predict",
                "--model",
                str(folder),
                "--input",
                str(work / "test.csv"),
                "--out",
                str(out),
            )
            pred = pd.read_csv(out, dtype={"id": str}).set_index("id").loc[test["ID"]]
            result[name] = metrics(pred[S.PRED].to_numpy(float), labels)
            result[name]["models"] = sorted(pred["model"].dropna().unique().tolist())
    result["run_model_at_least_as_good"] = (
        result["run_model"]["mae"] <= result["train_data_model"]["mae"]
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
