"""Fuzzing every parser of user input at scale: the properties of ``tests/fuzz`` on many more
generated inputs, counting crashes instead of stopping at the first.

Run as ``.venv/bin/python benchmarks/fuzz.py [--scale 1.0]`` (one process); writes
``results/bench/fuzz.json`` with ``examples`` (inputs tried), ``crashes`` (inputs where a
property failed or an unexpected exception escaped), ``peak_rss_mb`` and, measured in the
same run, ``baseline_rss_mb`` (after imports and training the small model) and the ratio of
the two; per family the examples, crashes, seconds and the first few crash reports.

Families (default counts, x ``--scale``): compositions 5,000; CSV files 1,500; CSV files
predicted through ``miscreen predict``'s table 500; JSONL files 1,500; JSONL files of
structure dicts with hostile ``@module``/``@class`` values and site properties 1,500; CIF
mutations (loaded, then featurized with the ``structure`` preset) 1,000; config documents
1,500.

No module may be imported from input: ``modules_imported_from_input`` lists the hostile
modules found newly imported, per hostile example (``sys.modules`` before and after each)
and over the whole run (before the first family and after the last); it must be empty.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "bench" / "fuzz.json"
SHARED = Path(os.environ.get("MISCREEN_MIRROR", REPO.parent / "shared" / "data"))
os.environ.setdefault("MISCREEN_MIRROR", str(SHARED))
sys.path.insert(0, str(REPO))

COUNTS = {
    "compositions": 5000,
    "csv": 1500,
    "csv_predict": 500,
    "jsonl": 1500,
    "hostile_structures": 1500,
    "cif": 1000,
    "config": 1500,
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_family(
    name: str, strategy: Any, check: Callable[[Any], None], examples: int, seed: int
) -> dict[str, Any]:
    """Run ``check`` on ``examples`` generated inputs; never stop at a failure."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hseed

    from tests.fuzz.properties import describe

    tried, crashes, reports = 0, 0, []

    @hseed(seed)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=["generate"],
    )
    @given(strategy)
    def body(example: Any) -> None:
        nonlocal tried, crashes
        tried += 1
        try:
            check(example)
        except Exception as exc:
            crashes += 1
            if len(reports) < 5:
                reports.append(
                    {
                        "input": describe(example),
                        "error": f"{type(exc).__name__}: {str(exc)[:300]}",
                        "where": traceback.format_exc(limit=-3)[-800:],
                    }
                )

    start = time.perf_counter()
    body()
    seconds = time.perf_counter() - start
    print(f"{name:>13}: {tried:6d} examples, {crashes} crashes, {seconds:6.1f} s", flush=True)
    return {"examples": tried, "crashes": crashes, "seconds": round(seconds, 1), "reports": reports}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every count")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)  # bad rows are logged by design; keep the run quiet

    from tests.fuzz import properties as P
    from tests.fuzz.helpers import small_model_folder

    scratch = P.scratch()
    os.environ.setdefault("MISCREEN_DATA_DIR", str(scratch / "data"))
    model = small_model_folder(scratch)
    P.check_predict(P.CsvExample("composition\r\nLi2O\r\n", [(2, True)], False), scratch, model)
    P.base_cifs()
    baseline = peak_rss_mb()
    families = {
        "compositions": (P.formulas, P.check_formula),
        "csv": (P.csv_files(), lambda e: P.check_csv(e, scratch)),
        "csv_predict": (
            P.csv_files(labelled=False),
            lambda e: P.check_predict(e, scratch, model),
        ),
        "jsonl": (P.jsonl_files(), lambda e: P.check_jsonl(e, scratch)),
        "hostile_structures": (
            P.hostile_jsonl_files(),
            lambda e: P.check_hostile_jsonl(e, scratch),
        ),
        "cif": (P.cif_mutations(), lambda e: P.check_cif(e, scratch)),
        "config": (P.config_documents(), lambda e: P.check_config(e, scratch)),
    }
    modules_before = set(sys.modules)
    start = time.perf_counter()
    results = {
        name: run_family(name, strategy, check, max(1, int(COUNTS[name] * args.scale)), args.seed)
        for name, (strategy, check) in families.items()
    }
    peak = peak_rss_mb()
    imported = sorted(
        P.IMPORTED_FROM_INPUT | (set(P.HOSTILE_MODULES) & (set(sys.modules) - modules_before))
    )
    summary = {
        "examples": sum(r["examples"] for r in results.values()),
        "crashes": sum(r["crashes"] for r in results.values()),
        "modules_imported_from_input": imported,
        "peak_rss_mb": round(peak, 1),
        "baseline_rss_mb": round(baseline, 1),
        "peak_over_baseline": round(peak / baseline, 2),
        "seconds": round(time.perf_counter() - start, 1),
        "processes": 1,
        "seed": args.seed,
        "families": results,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"{summary['examples']} examples, {summary['crashes']} crashes, modules imported "
        f"from input: {imported or 'none'}, peak RSS "
        f"{summary['peak_rss_mb']:.0f} MB ({summary['peak_over_baseline']:.2f}x the "
        f"{summary['baseline_rss_mb']:.0f} MB baseline), {summary['seconds']:.0f} s -> {OUT}"
    )


if __name__ == "__main__":
    main()
