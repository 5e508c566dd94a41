"""BVSE barrier benchmark on OBELiX: speed, robustness and rank agreement with experiment.

Run as ``.venv/bin/python benchmarks/bvse.py`` (``make bench``); writes
``results/bench/bvse.json`` and prints a summary. One process, one thread of work (but for
the ``jobs=2`` timing):

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
  largest barrier difference to ours on the same structures, and the k-d tree grid that
  ``site_energy_grid`` used before issue 22 on them (``speedup_vs_kdtree_grid``);
- ``candidates`` (issue 22, the main job's check of its top 50): a seeded sample of
  ``--candidates`` Li structures with an anion and 5-60 sites from the ``mp-2018`` and
  ``matbench-dielectric`` snapshots. Seconds per structure of ``barrier_table`` (jobs=1)
  against the k-d tree grid it replaced (the same oxidation states and percolation search,
  energies from ``site_energies`` on the same points), timed in the same run on the same
  structures (``speedup_vs_kdtree``, ``max_abs_diff_vs_kdtree_ev``), and the wall seconds
  for all of them with ``jobs=2`` (a fresh loky pool: workers start and import, ``cold``;
  then the same pool again);
- ``--resolutions 0.25 0.3``: the same measures at coarser grids, each against the default
  grid in the same run: seconds per structure, median / max |barrier difference| on the
  candidates and on OBELiX, and OBELiX's Spearman at that grid.

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
from typing import Any

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
CANDIDATE_SOURCES = (("mp-2018", "material_id", ""), ("matbench-dielectric", "row", "mbd-"))
CANDIDATE_SITES = (5, 60)
ANIONS = {"N", "P", "As", "Sb", "O", "S", "Se", "Te", "F", "Cl", "Br", "I", "H"}


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


def _candidate_rows(n: int) -> pd.DataFrame:
    """A seeded sample of ``n`` Li structures with an anion and 5-60 sites from the two
    snapshots (read directly: the loaders' symmetry analysis takes a minute)."""
    import gzip

    from miscreen.fetch.datasets import DATASETS, fetch_file

    rows = []
    for name, id_field, prefix in CANDIDATE_SOURCES:
        ds = DATASETS[name]
        with gzip.open(fetch_file(ds.name, ds.files[0].filename), "rt") as fh:
            for line in fh:
                obj = json.loads(line)
                st = obj.get("structure") or {}
                sites = st.get("sites", [])
                elements = {sp["element"] for site in sites for sp in site["species"]}
                low, high = CANDIDATE_SITES
                if "Li" in elements and elements & ANIONS and low <= len(sites) <= high:
                    rows.append((f"{prefix}{obj[id_field]}", name, json.dumps(st)))
    rng = np.random.default_rng(SEED)
    pick = sorted(rng.choice(len(rows), size=min(n, len(rows)), replace=False).tolist())
    return pd.DataFrame([rows[i] for i in pick], columns=["id", "source", "structure"])


def _kdtree_barriers(text: str, composition: str | None = None) -> tuple[float, float, float]:
    """Barriers as before the grid-line sum: the k-d tree's energies on the same grid."""
    from pymatgen.core import Composition, Structure
    from threadpoolctl import threadpool_limits

    from miscreen.verify.bvse_grid import grid_shape, site_energies
    from miscreen.verify.bvse_oxidation import with_oxidation_states
    from miscreen.verify.bvse_params import SCREENING, framework_parameters
    from miscreen.verify.bvse_percolation import percolation_barriers

    with threadpool_limits(limits=1):
        structure = Structure.from_dict(json.loads(text))
        comp = Composition(composition) if composition else None
        decorated, _ = with_oxidation_states(structure, comp)
        fw = framework_parameters(decorated, False, SCREENING)
        shape = grid_shape(decorated)
        axes = [np.arange(k) / k for k in shape]
        points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        energy = site_energies(fw, decorated.lattice, points).reshape(shape)
        return percolation_barriers(energy)


def _timed_table(rows: pd.DataFrame, **options: object) -> tuple[pd.DataFrame, int, float]:
    """``barrier_table`` of ``rows`` -> (table, failures, wall seconds)."""
    from miscreen.verify.bvse import barrier_table

    start = time.perf_counter()
    table, failures = barrier_table(rows, **options)  # type: ignore[arg-type]
    return table, len(failures), time.perf_counter() - start


def _differences(a: pd.DataFrame, b: pd.DataFrame) -> dict[str, float]:
    """Median and max |difference| of the 1-D/2-D/3-D barriers where both are finite."""
    from miscreen.verify.bvse import BVSE_E1D, BVSE_E2D, BVSE_E3D

    cols = [BVSE_E1D, BVSE_E2D, BVSE_E3D]
    both = a[cols].join(b[cols], how="inner", rsuffix="_b")
    diff = np.abs(both[cols].to_numpy() - both[[f"{c}_b" for c in cols]].to_numpy()).ravel()
    diff = diff[np.isfinite(diff)]
    nan_changed = int(
        (both[cols].isna().to_numpy() != both[[f"{c}_b" for c in cols]].isna().to_numpy()).sum()
    )
    return {
        "median_abs_diff_ev": float(np.median(diff)) if diff.size else math.nan,
        "max_abs_diff_ev": float(diff.max()) if diff.size else math.nan,
        "n_path_found_changed": nan_changed,
    }


def _candidate_speed(rows: pd.DataFrame) -> dict[str, Any]:
    """The candidates: the k-d tree grid and barrier_table with jobs 1 and 2, same run."""
    from miscreen.verify.bvse import BVSE_E1D, BVSE_E2D, BVSE_E3D

    _timed_table(rows.head(2))  # imports and parameter tables: paid by neither timing
    start = time.perf_counter()
    old = {}
    for rid, text in zip(rows["id"], rows["structure"], strict=True):
        try:
            old[rid] = _kdtree_barriers(text)
        except Exception:  # the same rows fail in barrier_table, with reasons
            continue
    old_s = time.perf_counter() - start
    old_table = pd.DataFrame.from_dict(old, orient="index", columns=[BVSE_E1D, BVSE_E2D, BVSE_E3D])
    table, n_failed, new_s = _timed_table(rows)
    _, _, cold_s = _timed_table(rows, jobs=2)
    two, _, warm_s = _timed_table(rows, jobs=2)
    n = max(len(rows), 1)
    return {
        "n": len(table),
        "n_failed": n_failed,
        "kdtree_s_per_structure": old_s / n,
        "s_per_structure": new_s / n,
        "speedup_vs_kdtree": old_s / new_s,
        **{f"{k}_vs_kdtree": v for k, v in _differences(table, old_table).items()},
        "seconds_jobs1": new_s,
        "seconds_jobs2_cold": cold_s,
        "seconds_jobs2": warm_s,
        "jobs2_same_table": bool(two.equals(table)),
    }


def _resolution_sweep(
    resolutions: list[float],
    candidates: pd.DataFrame,
    obelix: pd.DataFrame,
    reference: tuple[pd.DataFrame, float, pd.DataFrame, float],
) -> dict[str, object]:
    """Coarser grids against the default one: speed, barrier changes, OBELiX's Spearman."""
    from miscreen.verify.bvse import BVSE_E3D

    cand_ref, cand_s, obx_ref, obx_s = reference
    out: dict[str, object] = {}
    for res in resolutions:
        cand, _, c_s = _timed_table(candidates, resolution=res)
        obx, _, o_s = _timed_table(obelix, resolution=res)
        merged = obelix.set_index("id").join(obx, how="inner")
        rho, n_rho = _spearman(merged[BVSE_E3D].fillna(np.inf), merged["log10_sigma"])
        out[f"{res:g}"] = {
            "candidates_s_per_structure": c_s / max(len(candidates), 1),
            "candidates_speedup": cand_s / c_s,
            "candidates": _differences(cand, cand_ref),
            "obelix_s_per_structure": o_s / max(len(obelix), 1),
            "obelix_speedup": obx_s / o_s,
            "obelix": _differences(obx, obx_ref),
            "spearman_barrier_log_sigma": rho,
            "spearman_n": n_rho,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="first N CIF rows only")
    parser.add_argument("--no-baseline", action="store_true", help="skip the bvlain timing")
    parser.add_argument(
        "--candidates", type=int, default=50, help="snapshot candidates to time (0: none)"
    )
    parser.add_argument(
        "--resolutions", type=float, nargs="*", default=[], help="coarser grids to compare"
    )
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
        start = time.perf_counter()
        for text, comp in zip(sub["structure"], sub["composition"], strict=True):
            _kdtree_barriers(text, comp)
        kdtree_per = (time.perf_counter() - start) / max(len(sub), 1)
        base["ours_kdtree_grid_s_per_structure"] = kdtree_per
        base["speedup_vs_kdtree_grid"] = kdtree_per / ours_per
        result["baseline_bvlain"] = base

    cands = _candidate_rows(args.candidates) if args.candidates > 0 else None
    cand: dict[str, Any] | None = None
    if cands is not None:
        cand = result["candidates"] = _candidate_speed(cands)
    if args.resolutions:
        cands = cands if cands is not None else _candidate_rows(50)
        cand_table, _, cand_s = _timed_table(cands)
        reference = (cand_table, cand_s, table, elapsed)
        result["resolutions"] = _resolution_sweep(args.resolutions, cands, rows, reference)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, default=float))
    tmp.replace(args.out)
    for key in ("n", "n_failed", "s_per_structure", "spearman_barrier_log_sigma"):
        print(f"{key}: {result[key]}")
    extra = ("baseline_bvlain", "candidates", "resolutions")
    print(json.dumps({k: v for k, v in result.items() if k not in extra}, default=float))
    for key in ("baseline_bvlain", "candidates", "resolutions"):
        if key in result:
            print(f"{key}:", json.dumps(result[key], default=float))
    if cand is not None:
        print(
            f"candidates: {cand['n']} + {cand['n_failed']} failed, "
            f"{cand['s_per_structure']:.3f} s/structure vs {cand['kdtree_s_per_structure']:.3f} "
            f"with the k-d tree grid (x{cand['speedup_vs_kdtree']:.2f}); "
            f"jobs=2: {cand['seconds_jobs2_cold']:.1f} s cold, {cand['seconds_jobs2']:.1f} s warm"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
