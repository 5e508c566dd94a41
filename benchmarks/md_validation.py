"""MD validation set (issue 25): does an MD protocol with a given potential rank measured
Li-ion conductors, and how far off is it in decades?

LGPS and five OBELiX materials with CIFs, at most 50 atoms per simulation cell after the
existing ordering (``miscreen.verify.md_cell.prepare``), spanning 10.8 decades of measured
room-temperature sigma:

=============  ==========  ========================  ====================  =====
key            id          material                  measured S/cm         atoms
=============  ==========  ========================  ====================  =====
lgps           pymatgen    Li10GeP2S12 (Ewald)       1.2e-2 (Kamaya 2011)  50
li7p3s11       mdp         Li7P3S11 (ordered)        3.2e-3                42
li3n           gvd         Li3N (ordered, 2x2x2)     5.8e-4                32
beta-li3ps4    nhq         beta-Li3PS4 (Ewald)       8.9e-7                32
li4ges4        e6b         Li4GeS4 (Ewald)           2.0e-7                36
li3po4         9lo         gamma-Li3PO4 (ordered)    1.75e-13              32
=============  ==========  ========================  ====================  =====

(Sizes are the quick protocol's cells; the standard protocol's are 84-200 atoms.) For each
potential (``--potentials``; by default every one ``verify md`` offers, at about 0.12 s per
step of 50 atoms on one core for CHGNet and CHGNet-r2SCAN, 0.3 s for SevenNet-0 and
SevenNet-MF-0, 0.9 s for SevenNet-l3i5) the chosen protocol runs in its own run folder
(``results/md-validation-<potential>-<protocol>``; one folder holds one potential), NVT at
the input's lattice. The MD tasks resume where they stopped, so a killed run is simply run
again; ``--slurm`` submits each potential's tasks as a job array through ``verify md``'s
SLURM path (its analysis job writes the run's MD results); run this script again without
``--slurm`` once the arrays have finished to collect them (nothing left to run).

Writes ``results/bench/md_validation.json`` (a run on some materials or potentials adds
them to a file of the same protocol, and the statistics cover every row it then holds; a
file of another protocol is refused before anything runs): per material and potential ``ea_ev``,
``ea_stderr_ev``, ``sigma_300k_mS_cm`` (or ``sigma_300k_upper_bound_mS_cm`` when too few
hops), ``li_hops`` and the measured sigma; per potential the Spearman correlation between
computed and measured log10 sigma (a material with only an upper bound counts at its
bound, which ranks it no higher than it could be) and the mean signed error in decades
(materials with an estimate only).

    nice -n 10 .venv/bin/python benchmarks/md_validation.py --potentials chgnet-r2scan
    .venv/bin/python benchmarks/md_validation.py --materials lgps,li3n --potentials chgnet \\
        --steps-scale 0.01          # a smoke run of a few steps
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("MISCREEN_MIRROR", str(REPO.parent / "shared" / "data"))

OUT = REPO / "results" / "bench" / "md_validation.json"
LGPS_MEASURED_LOG10_S_CM = math.log10(12.0e-3)  # Kamaya et al. 2011, as in the md-lgps case


@dataclass(frozen=True)
class Material:
    key: str
    id: str  # candidate id in the sources below
    note: str


MATERIALS = {
    m.key: m
    for m in (
        Material("lgps", "pymatgen:Li10GeP2S12", "Li10GeP2S12, Kamaya et al. 2011"),
        Material("li7p3s11", "mdp", "Li7P3S11 glass-ceramic phase"),
        Material("li3n", "gvd", "Li3N"),
        Material("beta-li3ps4", "nhq", "beta-Li3PS4"),
        Material("li4ges4", "e6b", "Li4GeS4 (thio-LISICON)"),
        Material("li3po4", "9lo", "gamma-Li3PO4 (the md-lgps case's poor conductor)"),
    )
}
SOURCES = [
    {"kind": "pymatgen", "names": ["Li10GeP2S12"]},
    {"kind": "obelix", "split": "all", "require_structure": True},
]


def scaled(protocol: Any, scale: float) -> Any:
    """The protocol with its equilibration and production scaled (a smoke run); its name
    says so, so a scaled run never shares task folders with a full one."""
    if scale == 1.0:
        return protocol
    return replace(
        protocol,
        name=f"{protocol.name}-x{scale:g}",
        equilibration_ps=protocol.equilibration_ps * scale,
        production_ps=protocol.production_ps * scale,
    )


def run_config(results_dir: Path, potential: str, protocol_name: str) -> dict:
    """The config of one potential's run (written beside its results for SLURM's tasks)."""
    return {
        "run_name": f"md-validation-{potential}-{protocol_name}",
        "results_dir": str(results_dir),
        "seed": 0,
        "candidates": SOURCES,
    }


def measured(keys: list[str]) -> dict[str, float]:
    """Measured log10 sigma (S/cm) per material: OBELiX's value, Kamaya's for LGPS."""
    from miscreen import schema as S
    from miscreen.fetch.obelix import load_obelix

    records, _ = load_obelix("all", with_structures=False)
    by_id = dict(zip(records[S.ID].astype(str), records[S.TARGET], strict=True))
    out = {}
    for key in keys:
        cid = MATERIALS[key].id
        out[key] = LGPS_MEASURED_LOG10_S_CM if key == "lgps" else float(by_id[cid])
    return out


def material_row(result: Any, measured_log10: float) -> dict:
    """One material with one potential: the MD numbers beside the measured sigma."""
    a = result.arrhenius
    sigma = a.sigma_300k_ms_cm if a is not None else None
    bound = a.sigma_300k_upper_bound_ms_cm if a is not None else None
    computed = math.log10(sigma / 1e3) if sigma else None
    if computed is None and bound:
        computed_bound = math.log10(bound / 1e3)
    else:
        computed_bound = None
    return {
        "id": result.id,
        "formula": result.formula,
        "atoms": result.atoms,
        "status": a.status if a is not None else "incomplete",
        "ea_ev": a.ea_ev if a is not None else None,
        "ea_stderr_ev": a.ea_stderr_ev if a is not None else None,
        "sigma_300k_mS_cm": sigma,
        "sigma_300k_upper_bound_mS_cm": bound,
        "li_hops": result.li_hops,
        "li_hops_per_temperature": {f"{t.temperature_k:g}": t.li_hops for t in result.temperatures},
        "incomplete_temperatures_k": result.incomplete,
        "measured_log10_sigma_S_cm": measured_log10,
        "measured_sigma_mS_cm": 1e3 * 10**measured_log10,
        "computed_log10_sigma_S_cm": computed,
        "computed_log10_upper_bound_S_cm": computed_bound,
        "potential_version": result.potential_version,
        "cell": result.cell,
    }


def statistics(rows: dict[str, dict]) -> dict:
    """Per potential: Spearman between computed and measured log10 sigma (an upper bound
    counts at its bound), and the mean signed error in decades over the estimates."""
    from scipy.stats import spearmanr

    pairs, errors = [], []
    for row in rows.values():
        value = row["computed_log10_sigma_S_cm"]
        if value is not None:
            errors.append(value - row["measured_log10_sigma_S_cm"])
        else:
            value = row["computed_log10_upper_bound_S_cm"]
        if value is not None:
            pairs.append((value, row["measured_log10_sigma_S_cm"]))
    rho = None
    if len(pairs) >= 2:
        r = spearmanr([p[0] for p in pairs], [p[1] for p in pairs]).statistic
        rho = None if math.isnan(r) else float(r)
    return {
        "spearman_log_sigma": rho,
        "n_ranked": len(pairs),
        "mean_signed_error_decades": sum(errors) / len(errors) if errors else None,
        "n_estimates": len(errors),
    }


def run_potential(
    potential: str,
    keys: list[str],
    protocol: Any,
    results_dir: Path,
    jobs: int,
    slurm: bool,
    device: str,
) -> list | None:
    """Plan (keeping what is done), then run here and analyse -> results; or, with
    ``slurm``, submit the array and its analysis -> None."""
    from miscreen import schema as S
    from miscreen.config import load_config
    from miscreen.fetch.parsing import structure_from_json
    from miscreen.pipeline import verification as wiring
    from miscreen.verify.md_run import MDCandidate

    results_dir.mkdir(parents=True, exist_ok=True)
    config_path = results_dir / f"md-validation-{potential}-{protocol.name}.yaml"
    config_path.write_text(json.dumps(run_config(results_dir, potential, protocol.name)))
    cfg = load_config(config_path)
    ids = [MATERIALS[k].id for k in keys]
    records = wiring.candidate_records(cfg, ids)
    by_id = {str(r[S.ID]): r for r in records.to_dict("records")}
    candidates = [
        MDCandidate(cid, structure_from_json(by_id[cid][S.STRUCTURE]), str(by_id[cid][S.SOURCE]))
        for cid in ids
    ]
    if slurm:
        choice = wiring.MDChoice(protocol, candidates, S.empty_failures(), potential)
        done = wiring.submit_md_stage(cfg, config_path, choice, device)
        print(f"{potential}: submitted array {done.array_id} ({done.tasks} tasks), "
              f"analysis {done.then_id}; run this script again afterwards to collect")  # fmt: skip
        return None
    plan, failures = wiring.plan_md(cfg, candidates, protocol, None, potential)
    if len(failures):
        raise SystemExit(f"{potential}: could not prepare {failures[S.ID].tolist()}")
    failed = wiring.run_md(cfg, plan, failures, jobs=jobs, threads=1, device=device)
    if len(failed):
        raise SystemExit(f"{potential}: MD failed: " + "; ".join(failed["reason"]))
    return wiring.analyze_md(cfg)


def earlier_rows(out: Path, protocol: dict) -> dict[str, dict]:
    """The per-potential material rows of an earlier ``out`` made with the same protocol, so
    that a run on some materials adds to the file instead of replacing it; a file made with
    another protocol is refused before anything runs (``--out`` writes elsewhere)."""
    if not out.exists():
        return {}
    try:
        old = json.loads(out.read_text())
    except json.JSONDecodeError as exc:
        raise SystemExit(f"{out} is not valid JSON ({exc}); move it away or pass --out") from None
    protocol = json.loads(json.dumps(protocol))  # as the file holds it (tuples as lists)
    if old.get("protocol") != protocol or old.get("cell") != "experimental":
        name = (old.get("protocol") or {}).get("name")
        raise SystemExit(
            f"{out} holds results of another protocol ({name}); pass --out to write this "
            f"one ({protocol['name']}) elsewhere, or move that file away"
        )
    return {p: d.get("materials", {}) for p, d in old.get("potentials", {}).items()}


def _order(key: str) -> int:
    return list(MATERIALS).index(key) if key in MATERIALS else len(MATERIALS)


def main(argv: list[str] | None = None) -> dict | None:
    from miscreen.potentials import POTENTIALS
    from miscreen.verify.md_protocol import PROTOCOLS, error_line

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--potentials", default=",".join(POTENTIALS), help="default: every one offered")
    ap.add_argument("--materials", default=",".join(MATERIALS))
    ap.add_argument("--protocol", default="quick", choices=sorted(PROTOCOLS))
    ap.add_argument("--steps-scale", type=float, default=1.0, help="scale the run lengths")
    ap.add_argument("--jobs", type=int, default=2, help="tasks at once here (one thread each)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--slurm", action="store_true", help="submit one array per potential")
    ap.add_argument("--results-dir", type=Path, default=REPO / "results")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    potentials = [p for p in args.potentials.split(",") if p]
    keys = [k for k in args.materials.split(",") if k]
    unknown = [p for p in potentials if p not in POTENTIALS] + [
        k for k in keys if k not in MATERIALS
    ]
    if unknown:
        raise SystemExit(
            f"unknown {', '.join(unknown)}; potentials: {', '.join(POTENTIALS)}; "
            f"materials: {', '.join(MATERIALS)}"
        )
    protocol = scaled(PROTOCOLS[args.protocol], args.steps_scale)
    print(error_line(protocol), file=sys.stderr)
    earlier = {} if args.slurm else earlier_rows(args.out, protocol.to_dict())
    t0 = time.perf_counter()
    truth = measured(keys)
    by_potential: dict[str, dict] = {}
    for potential in potentials:
        results = run_potential(
            potential, keys, protocol, args.results_dir, args.jobs, args.slurm, args.device
        )
        if results is None:
            continue
        by_id = {r.id: r for r in results}
        rows = {k: material_row(by_id[MATERIALS[k].id], truth[k]) for k in keys}
        by_potential[potential] = {"materials": rows}
    for potential, rows in earlier.items():  # materials and potentials this run did not touch
        mine = by_potential.setdefault(potential, {"materials": {}})["materials"]
        mine.update({k: row for k, row in rows.items() if k not in mine})
    for entry in by_potential.values():  # rows in the set's order, then the statistics
        rows = entry["materials"]
        entry["materials"] = dict(sorted(rows.items(), key=lambda kv: _order(kv[0])))
        entry.update(statistics(entry["materials"]))
    if args.slurm:
        return None
    out = {
        "protocol": protocol.to_dict(),
        "cell": "experimental",
        "materials": {
            k: {"id": m.id, "note": m.note}
            for k, m in MATERIALS.items()
            if any(k in d["materials"] for d in by_potential.values())
        },
        "potentials": by_potential,
        "runtime_s": round(time.perf_counter() - t0, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({p: {k: v for k, v in d.items() if k != "materials"}
                      for p, d in by_potential.items()}, indent=1))  # fmt: skip
    return out


if __name__ == "__main__":
    main()
