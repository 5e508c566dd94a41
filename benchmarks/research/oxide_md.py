"""Does the project's MD see the LGPS-type oxide slower than LGPS, where BVSE does not?
(issue 24)

`make lgps-family` misses one check: every oxide analogue Li10MP2O12 should have a higher
BVSE barrier than every sulfide, as Ong et al. (Energy Environ. Sci. 6, 148 (2013)) found the
oxides much slower by ab initio MD. ``benchmarks/research/bvse_volume.py`` showed that BVSE
finds the oxide's Li path as open as the sulfides' at any DFT-like volume of the LGPS
framework. First-principles MD disagrees with itself on this question: Materzanini et al.
(Car-Parrinello MD, arXiv 2010.08068, Phys. Rev. Mater. 2021) give tetragonal (LGPS-type)
Li10GeP2O12 an Ea of 0.22 eV against 0.18 eV for tetragonal LGPS, and find only the
orthorhombic (LISICON-type) oxide orders of magnitude slower. This study asks the project's
own MD, the method Ong et al. used, with a universal potential in place of DFT:

* the two cells: Li10GeP2S12 (pymatgen's cell ordered into 50 atoms, the case's parent) and
  its S->O analogue, each as the case relaxed it (SevenNet-0, the settings of
  ``configs/lgps-family.yaml``; read from ``results/bench/bvse_volume.json``, which
  ``bvse_volume.py`` writes);
* ``verify md``'s quick protocol (600/750/900 K, 1 + 7 ps) at those cells (NVT, positions
  relaxed at the cell), with CHGNet 0.3.0, the potential whose LGPS result at the measured
  cell agrees with experiment (`make md-lgps`: Ea 0.25 eV, 26 mS/cm); ``--potential`` for
  another.

How the answer is read, fixed before the run: MD calls the oxide slower when it is slower
at each of the three temperatures and, where both cells have a sigma(300 K) estimate, that
estimate is lower. At a temperature: where both have a diffusivity, the oxide's is lower;
where the oxide saw too few Li hops for one (an upper bound) and the sulfide did not, the
oxide is slower (same cell size, Li count and duration, so the hop counts compare directly);
the reverse is not slower; two bounds decide nothing (the answer is then ``null``). Nothing in
the case, its checks or BVSE changes with the answer; it goes to docs/RESULTS.md's generation
entry.

    nice -n 5 .venv/bin/python benchmarks/research/oxide_md.py --jobs 2   # about an hour

Writes ``results/bench/oxide_md.json`` (run folder ``results/oxide-md-<potential>-quick``;
the MD tasks resume where they stopped). On 2 quiet cores CHGNet takes about 0.18 s per step
of the sulfide and 0.42 s of the denser oxide.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("MISCREEN_MIRROR", str(REPO.parent / "shared" / "data"))

from benchmarks.md_validation import scaled  # noqa: E402

OUT = REPO / "results" / "bench" / "oxide_md.json"
RELAXED = REPO / "results" / "bench" / "bvse_volume.json"  # bvse_volume.py's relaxations
CELLS = {"sulfide": "Li10GeP2S12", "oxide": "Li10GeP2O12"}


def relaxed_cells(path: Path = RELAXED) -> tuple[str, dict[str, dict]]:
    """The case's relaxation settings and its relaxed cells (pymatgen dicts) by formula."""
    if not path.exists():
        raise SystemExit(f"{path} is missing: run benchmarks/research/bvse_volume.py first")
    doc = json.loads(path.read_text())
    cells = {}
    for formula in CELLS.values():
        entry = doc["relaxed"][formula]
        if entry["stopped"] != "converged":
            raise SystemExit(f"{path}: the relaxation of {formula} stopped ({entry['stopped']})")
        cells[formula] = entry["structure"]
    return str(doc["potential"]), cells


def slower_at(oxide: dict, sulfide: dict, temperature: str) -> bool | None:
    """The rule above at one temperature (``None``: both saw too few hops)."""
    oxide_bound = temperature in oxide["upper_bound_k"]
    sulfide_bound = temperature in sulfide["upper_bound_k"]
    if oxide_bound and sulfide_bound:
        return None
    if oxide_bound or sulfide_bound:
        return oxide_bound
    return oxide["diffusivity_cm2_s"][temperature] < sulfide["diffusivity_cm2_s"][temperature]


def slower(oxide: dict, sulfide: dict) -> bool | None:
    """The rule above over the temperatures and sigma(300 K); ``None`` when undecided."""
    temperatures = set(oxide["diffusivity_cm2_s"])
    if temperatures != set(sulfide["diffusivity_cm2_s"]) or not temperatures:
        return None
    each = [slower_at(oxide, sulfide, t) for t in sorted(temperatures, key=float)]
    if False in each:
        return False
    estimates = [
        r["sigma_300k_mS_cm"]
        for r in (oxide, sulfide)
        if r["sigma_300k_mS_cm"] is not None and not r["sigma_300k_is_upper_bound"]
    ]
    if len(estimates) == 2 and not estimates[0] < estimates[1]:
        return False
    return None if None in each else True


def summary(result: Any) -> dict:  # a miscreen.verify.md_results.CandidateResult
    """One cell's MD numbers: per temperature the diffusivity (its bound where too few hops
    were seen) and hops, then Ea and sigma(300 K) (the bound where there is no estimate)."""
    a = result.arrhenius
    sigma = None
    if a is not None:
        sigma = a.sigma_300k_ms_cm if a.sigma_300k_ms_cm else a.sigma_300k_upper_bound_ms_cm
    return {
        "id": result.id,
        "formula": result.formula,
        "atoms": result.atoms,
        "diffusivity_cm2_s": {
            f"{t.temperature_k:g}": (
                t.diffusivity_bound_cm2_s if t.upper_bound else t.diffusivity_cm2_s
            )
            for t in result.temperatures
        },
        "upper_bound_k": [f"{t.temperature_k:g}" for t in result.temperatures if t.upper_bound],
        "li_hops": {f"{t.temperature_k:g}": t.li_hops for t in result.temperatures},
        "framework_melted_k": [
            f"{t.temperature_k:g}" for t in result.temperatures if t.framework_melted
        ],
        "ea_ev": a.ea_ev if a is not None else None,
        "ea_stderr_ev": a.ea_stderr_ev if a is not None else None,
        "sigma_300k_mS_cm": sigma,
        "sigma_300k_is_upper_bound": bool(a is not None and not a.sigma_300k_ms_cm),
        "incomplete_temperatures_k": result.incomplete,
    }


def main(argv: list[str] | None = None) -> dict:
    from pymatgen.core import Structure

    from miscreen import schema as S
    from miscreen.config import load_config
    from miscreen.pipeline import verification as wiring
    from miscreen.verify.md_protocol import PROTOCOLS, error_line
    from miscreen.verify.md_run import MDCandidate

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--potential", default="chgnet")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--steps-scale", type=float, default=1.0, help="a smoke run: e.g. 0.01")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    t0 = time.time()
    relaxation, cells = relaxed_cells()
    protocol = scaled(PROTOCOLS["quick"], args.steps_scale)
    print(error_line(protocol))
    results_dir = REPO / "results"
    run_name = f"oxide-md-{args.potential}-{protocol.name}"
    (results_dir / run_name).mkdir(parents=True, exist_ok=True)
    source = results_dir / run_name / "cells.jsonl"
    source.write_text(
        "".join(json.dumps({"id": f, "structure": s}) + "\n" for f, s in cells.items())
    )
    config_path = results_dir / run_name / "oxide-md.yaml"
    config_path.write_text(
        json.dumps(
            {
                "run_name": run_name,
                "results_dir": str(results_dir),
                "seed": 0,
                "candidates": [{"kind": "jsonl", "path": str(source), "id_field": "id"}],
            }
        )
    )
    cfg = load_config(config_path)
    candidates = [
        MDCandidate(f, Structure.from_dict(s), f"{relaxation} relaxation") for f, s in cells.items()
    ]
    plan, failures = wiring.plan_md(cfg, candidates, protocol, None, args.potential)
    if len(failures):
        raise SystemExit(f"could not prepare {failures[S.ID].tolist()}")
    failed = wiring.run_md(cfg, plan, failures, jobs=args.jobs, threads=1)
    if len(failed):
        raise SystemExit("MD failed: " + "; ".join(failed["reason"]))
    by_formula = {r.id: summary(r) for r in wiring.analyze_md(cfg)}
    rows = {kind: by_formula[formula] for kind, formula in CELLS.items()}
    doc = {
        "question": "does MD see Li10GeP2O12 (LGPS-type, relaxed as the case relaxes it) "
        "slower than Li10GeP2S12, where BVSE does not?",
        "rule": "slower at each temperature (lower diffusivity; or too few hops for one "
        "where the sulfide had enough) and, where both have one, a lower sigma(300 K) estimate",
        "potential": args.potential,
        "protocol": protocol.name,
        "cell": "the case's relaxed cell (NVT; positions relaxed at it)",
        "relaxation": relaxation,
        "volume_a3_per_atom": {
            k: round(Structure.from_dict(cells[f]).volume / len(cells[f]["sites"]), 3)
            for k, f in CELLS.items()
        },
        **rows,
        "oxide_slower": slower(rows["oxide"], rows["sulfide"]),
        "seconds": round(time.time() - t0, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
    for kind in CELLS:
        r = rows[kind]
        d = ", ".join(f"{t} K {v:.2e}" for t, v in r["diffusivity_cm2_s"].items())
        print(f"{kind:8s} {r['formula']}: D {d} cm2/s; hops {r['li_hops']}; "
              f"Ea {r['ea_ev']}; sigma(300 K) {r['sigma_300k_mS_cm']} mS/cm")  # fmt: skip
    print(f"oxide slower by the rule: {doc['oxide_slower']} -> {args.out}")
    return doc


if __name__ == "__main__":
    main()
