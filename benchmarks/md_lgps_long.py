"""A longer CHGNet MD of LGPS than `make md-lgps`: is the gap to the measured Ea and
sigma(300 K) a matter of statistics, or of the potential? (issue 15)

The same ordered 50-atom Li20Ge2P4S24 cell as the quick protocol, at four lower temperatures
(600-900 K: the quick run's framework began to melt at 1200 K) with 16 ps of production each,
four times the quick protocol's 4 ps. Two tasks at a time, one thread each: about 40 minutes
on an idle 2-core machine; a killed run resumes from its checkpoints in
``results/md-lgps-long/``. Writes ``results/bench/md_lgps_long.json``: the same per-material
summary as ``case.json`` and the gap to the measured values (Kamaya et al. 2011).

    .venv/bin/python benchmarks/md_lgps_long.py
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("MISCREEN_MIRROR", str(REPO.parent / "shared" / "data"))

from miscreen.cases import md_lgps  # noqa: E402
from miscreen.config import load_config  # noqa: E402
from miscreen.pipeline.verification import analyze_md, plan_md, run_md  # noqa: E402
from miscreen.verify.md_protocol import QUICK, MDProtocol  # noqa: E402

OUT = REPO / "results" / "bench" / "md_lgps_long.json"
LONG = MDProtocol(
    name="long",
    temperatures_k=(600.0, 700.0, 800.0, 900.0),
    equilibration_ps=2.0,
    production_ps=16.0,
    checkpoint_every=500,
    max_atoms=QUICK.max_atoms,
    relax_steps=QUICK.relax_steps,
    low_statistics=True,
)


def main() -> None:
    t0 = time.perf_counter()
    cfg = load_config(REPO / "configs" / "md-lgps.yaml")
    cfg = cfg.model_copy(update={"run_name": "md-lgps-long"})
    lgps = [c for c in md_lgps.candidates(cfg) if c.id == md_lgps.LGPS_ID]
    plan, failures = plan_md(cfg, lgps, LONG)
    if len(failures):
        raise SystemExit(f"could not prepare LGPS: {failures['reason'].tolist()}")
    failed = run_md(cfg, plan, failures, jobs=md_lgps.JOBS, threads=1, device="cpu")
    if len(failed):
        raise SystemExit("MD failed: " + "; ".join(failed["reason"]))
    result = next(r for r in analyze_md(cfg) if r.id == md_lgps.LGPS_ID)
    summary = md_lgps.material_summary(result)
    out = {
        "protocol": {k: v for k, v in LONG.to_dict().items() if k != "name"},
        "lgps": summary,
        "lgps_vs_measured": md_lgps.against_measured(summary),
        "quick_protocol_for_comparison": "results/md-lgps/case.json",
        "references": md_lgps.REFERENCES,
        "runtime_s": round(time.perf_counter() - t0, 1),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
