"""BVSE barrier benchmark on OBELiX: speed, robustness and rank agreement with experiment.

Run as ``.venv/bin/python benchmarks/bvse.py`` (``make bench``); writes
``results/bench/bvse.json`` and prints a summary. One process, one thread of work:

- ``s_per_structure``: wall seconds of ``barrier_table`` over the OBELiX rows with a CIF,
  divided by their number (failures included); target <= 5 s;
- ``n``, ``n_failed``: rows with barriers, rows in the failures table (with reasons);
- ``spearman_barrier_log_sigma``: Spearman rho between the 3-D barrier and the measured
  log10 sigma (``log10_sigma``; censored values at the OBELiX floor, as upstream). A row
  with no 3-D path below ``ENCUT_EV`` ranks as the highest barrier. Target: |rho| >= 0.4
  (negative: higher barrier, lower conductivity). Variants: finite barriers only, and
  without censored rows;
- baseline: ``bvlain``'s ``Lain`` (the reference implementation, ordered structures only)
  on a seeded subsample of the ordered OBELiX structures, timed in the same run, with the
  largest barrier difference to ours on the same structures.

Settings are the library defaults (``miscreen.verify.bvse``); nothing is tuned here.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "bench" / "bvse.json"
SHARED = Path(os.environ.get("MISCREEN_MIRROR", REPO.parent / "shared" / "data"))
os.environ.setdefault("MISCREEN_MIRROR", str(SHARED))
BASELINE_N = 12
BASELINE_MAX_POINTS = 150_000  # bvlain holds ~800 bytes per grid point: keep under ~150 MB
SEED = 0


def _spearman(x: pd.Series, y: pd.Series) -> tuple[float, int]:
    ok = x.notna() & y.notna()
    if ok.sum() < 3:
        return math.nan, int(ok.sum())
    rho = spearmanr(x[ok], y[ok]).statistic
    return float(rho), int(ok.sum())


def _baseline(structures: dict[str, object], ours: pd.DataFrame) -> dict[str, object]:
    """bvlain on ordered structures: seconds per structure and max |difference| to ours."""
    from bvlain import Lain

    from miscreen.verify.bvse import BVSE_E1D, BVSE_E2D, BVSE_E3D, ENCUT_EV
    from miscreen.verify.bvse_grid import grid_shape

    ids = [
        rid
        for rid, st in structures.items()
        if rid in ours.index
        and st.is_ordered  # type: ignore[attr-defined]
        and np.prod(grid_shape(st)) <= BASELINE_MAX_POINTS  # type: ignore[arg-type]
    ]
    rng = np.random.default_rng(SEED)
    pick = sorted(rng.choice(ids, size=min(BASELINE_N, len(ids)), replace=False).tolist())
    seconds, diffs, failed = 0.0, [], 0
    for rid in pick:
        start = time.perf_counter()
        try:
            calc = Lain(verbose=False)
            calc.read_structure(structures[rid])
            calc.bvse_distribution(mobile_ion="Li1+", r_cut=10.0, resolution=0.2, k=100)
            ref = calc.percolation_barriers(encut=ENCUT_EV)
        except Exception:
            failed += 1
            continue
        finally:
            seconds += time.perf_counter() - start
        for key, col in (("E_1D", BVSE_E1D), ("E_2D", BVSE_E2D), ("E_3D", BVSE_E3D)):
            a, b = float(ref[key]), float(ours.loc[rid, col])
            if math.isfinite(a) and math.isfinite(b):
                diffs.append(abs(a - b))
    return {
        "ids": pick,
        "n_failed": failed,
        "s_per_structure": seconds / max(len(pick), 1),
        "max_abs_diff_ev": max(diffs) if diffs else math.nan,
        "median_abs_diff_ev": float(np.median(diffs)) if diffs else math.nan,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="first N CIF rows only")
    parser.add_argument("--no-baseline", action="store_true", help="skip the bvlain timing")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")

    from pymatgen.core import Structure

    from miscreen.fetch.obelix import load_obelix
    from miscreen.verify.bvse import (
        BVSE_E3D,
        BVSE_METHOD,
        BVSE_OXIDATION,
        ENCUT_EV,
        R_CUT_A,
        RESOLUTION_A,
        barrier_table,
    )

    records, _ = load_obelix("all")
    rows = records[records["structure"].notna()].reset_index(drop=True)
    if args.limit:
        rows = rows.iloc[: args.limit]
    start = time.perf_counter()
    table, failures = barrier_table(rows)
    elapsed = time.perf_counter() - start

    merged = rows.set_index("id").join(table, how="inner")
    barrier = merged[BVSE_E3D].fillna(np.inf)  # no 3-D path below encut: highest barrier
    rho, n_rho = _spearman(barrier, merged["log10_sigma"])
    rho_finite, n_finite = _spearman(merged[BVSE_E3D], merged["log10_sigma"])
    uncensored = ~merged["censored"].astype(bool)
    rho_unc, n_unc = _spearman(barrier[uncensored], merged.loc[uncensored, "log10_sigma"])
    result: dict[str, object] = {
        "n": len(table),
        "n_failed": len(failures),
        "s_per_structure": elapsed / max(len(rows), 1),
        "spearman_barrier_log_sigma": rho,
        "spearman_n": n_rho,
        "spearman_finite_barriers_only": rho_finite,
        "spearman_finite_n": n_finite,
        "spearman_uncensored": rho_unc,
        "spearman_uncensored_n": n_unc,
        "n_no_3d_path": int(merged[BVSE_E3D].isna().sum()),
        "methods": table[BVSE_METHOD].value_counts().to_dict(),
        "oxidation": table[BVSE_OXIDATION].value_counts().to_dict(),
        "failure_reasons": failures["reason"].str.slice(0, 80).value_counts().to_dict(),
        "settings": {"resolution_a": RESOLUTION_A, "r_cut_a": R_CUT_A, "encut_ev": ENCUT_EV},
    }
    if not args.no_baseline:
        structures = {
            rid: Structure.from_dict(json.loads(text))
            for rid, text in zip(rows["id"], rows["structure"], strict=True)
        }
        base = _baseline(structures, table)
        sub = rows[rows["id"].isin(base["ids"])]  # type: ignore[arg-type]
        start = time.perf_counter()
        barrier_table(sub)
        ours_per = (time.perf_counter() - start) / max(len(sub), 1)
        base["ours_s_per_structure"] = ours_per
        base["speedup_vs_bvlain"] = base["s_per_structure"] / ours_per  # type: ignore[operator]
        result["baseline_bvlain"] = base

    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, default=float))
    tmp.replace(args.out)
    for key in ("n", "n_failed", "s_per_structure", "spearman_barrier_log_sigma"):
        print(f"{key}: {result[key]}")
    print(json.dumps({k: v for k, v in result.items() if k != "baseline_bvlain"}, default=float))
    if "baseline_bvlain" in result:
        print("baseline_bvlain:", json.dumps(result["baseline_bvlain"], default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
