"""Time a cold `make screen`: the default configuration, an empty data folder and feature
cache, fresh results and model folders -> results/bench/screen.json.

Writes ``wall_s`` (the whole `miscreen run`, process start to exit), the time of each
stage (from the manifest's per-stage timestamps: train + evaluate, screen, report), the
ratio to the 3-minute target, and a warm rerun (features cached) as the baseline measured
in the same script. The one-time `.venv` bootstrap is not part of it.

    .venv/bin/python benchmarks/screen.py [--config configs/default.yaml]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "bench" / "screen.json"
TARGET_S = 180.0


def timed_run(config: Path, data_dir: Path) -> float:
    """Wall seconds of one `miscreen run` in its own process."""
    env = {**os.environ, "MISCREEN_DATA_DIR": str(data_dir)}
    env.setdefault("MISCREEN_MIRROR", str(REPO.parent / "shared" / "data"))
    exe = Path(sys.executable).with_name("miscreen")
    start = time.perf_counter()
    subprocess.run([str(exe), "run", str(config)], check=True, env=env)
    return time.perf_counter() - start


def stage_seconds(manifest: dict) -> dict[str, float]:
    """Seconds per stage from the manifest's timestamps (each stage ends at its entry)."""
    stages = manifest["stages"]
    order = ["run", "train", "screen", "report"]
    times = {s: datetime.fromisoformat(stages[s]["finished_at"]) for s in order if s in stages}
    out, previous = {}, times["run"]
    for name in order[1:]:
        if name in times:
            out[name] = round((times[name] - previous).total_seconds(), 1)
            previous = times[name]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "default.yaml")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="miscreen-bench-screen-") as tmp:
        work = Path(tmp)
        raw = yaml.safe_load(args.config.read_text())
        raw |= {"results_dir": str(work / "results"), "models_dir": str(work / "models")}
        config = work / "config.yaml"
        config.write_text(yaml.safe_dump(raw))
        cold = timed_run(config, work / "data")
        run_dir = work / "results" / raw.get("run_name", "default")
        manifest = json.loads((run_dir / "manifest.json").read_text())
        stages = stage_seconds(manifest)
        candidates = manifest["stages"]["screen"]["candidates"]
        warm = timed_run(config, work / "data")
    result = {
        "config": str(args.config),
        "wall_s": round(cold, 1),
        "stages_s": stages,
        "startup_and_loading_s": round(cold - sum(stages.values()), 1),
        "candidates_screened": candidates,
        "target_s": TARGET_S,
        "ratio_to_target": round(cold / TARGET_S, 3),
        "warm_rerun_wall_s": round(warm, 1),
        "cold_over_warm": round(cold / warm, 3),
        "cpus": os.cpu_count(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
