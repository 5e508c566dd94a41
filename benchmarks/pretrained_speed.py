"""Speed of the pretrained (CHGNet) features: the fast path against CHGNet's own (issue 23).

Run as ``nice -n 10 .venv/bin/python benchmarks/pretrained_speed.py`` (one torch thread; about
3 minutes of CPU). Writes ``results/bench/pretrained_speed.json`` and prints a summary.

Both paths run in this script on the same structures, one structure per call, alternately,
so the ratio holds under whatever load the machine has:

- *reference*: CHGNet's ``CrystalGraphConverter`` ('fast' algorithm: C for the edges, Python
  for the angle list) on a placeholder structure, then CHGNet's full forward pass
  (``task="e"``, ``return_atom_feas``) with the element embedding replaced by the
  occupancy-weighted mix (:func:`miscreen.featurize.pretrained.reference_atom_features`);
- *fast*: :func:`miscreen.featurize.pretrained.crystal_graph` (the same graph from numpy) and
  :func:`~miscreen.featurize.pretrained.atom_features` (the forward stopped at the block
  whose atom features are read), i.e. what :func:`~miscreen.featurize.pretrained.embed` runs.

Per set it reports CPU seconds (``time.process_time``) for the graph and for the forward
pass of each path, the speed-up, and the largest absolute difference between the two paths'
pooled features (0 when they agree to the last bit). The sets: the OBELiX training CIFs
(254) and ``--candidates`` structures drawn (``--seed``) from the default configuration's
candidate snapshots.

Result (2 shared cores, load 5-7, niced): the 254 training CIFs 110.7 -> 40.1 s of CPU
(2.76x; graph 46.0 -> 1.1 s, forward 64.6 -> 39.0 s), the 500 candidates 17.1 -> 7.8 s
(2.20x); the pooled features agree to the last bit (max abs difference 0).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from pymatgen.core import Structure

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "bench" / "pretrained_speed.json"
CONFIG = REPO / "configs" / "default.yaml"
T = TypeVar("T")


def training_structures() -> list[Structure]:
    """The CIFs of the OBELiX training split."""
    from miscreen import schema
    from miscreen.fetch.obelix import load_obelix
    from miscreen.fetch.parsing import structure_from_json

    records, _ = load_obelix("train")
    with_cif = records[schema.has_structure(records)]
    return [structure_from_json(js) for js in with_cif[schema.STRUCTURE]]


def candidate_structures(n: int, seed: int) -> list[Structure]:
    """``n`` structures drawn without replacement from the default run's candidates."""
    from miscreen import schema
    from miscreen.config import load_config
    from miscreen.fetch.parsing import structure_from_json
    from miscreen.fetch.sources import load_candidates

    records = load_candidates(load_config(CONFIG)).records
    records = records[schema.has_structure(records)]
    rows = np.random.default_rng(seed).choice(len(records), min(n, len(records)), replace=False)
    return [structure_from_json(js) for js in records[schema.STRUCTURE].iloc[np.sort(rows)]]


def cpu(fn: Callable[..., T], *args: Any) -> tuple[T, float]:
    """``fn(*args)`` and the CPU seconds it took."""
    start = time.process_time()
    out = fn(*args)
    return out, time.process_time() - start


def time_set(structures: list[Structure]) -> dict:
    """Both paths on every structure (reference first), CPU seconds per part."""
    from miscreen.featurize import pretrained as P

    keys = ("occupancies", "ref_graph", "ref_forward", "fast_graph", "fast_forward")
    parts: dict[str, list[float]] = {k: [] for k in keys}
    worst, failures, sites = 0.0, 0, []
    for s in structures:
        try:
            occ, t_occ = cpu(P.occupancies, s)
            graph, t_graph = cpu(reference_graph, s, occ)
        except ValueError:  # over the cap or an isolated atom: both paths refuse it
            failures += 1
            continue
        ref, t_forward = cpu(reference_forward, graph, occ)
        fast_graph, f_graph = cpu(P.crystal_graph, s, occ)
        fast, f_forward = cpu(fast_forward, fast_graph, occ)
        for key, t in zip(keys, (t_occ, t_graph, t_forward, f_graph, f_forward), strict=True):
            parts[key].append(t)
        worst = max(worst, float(np.abs(P.pool(ref, occ) - P.pool(fast, occ)).max()))
        sites.append(len(s))
    ref_total = np.sum([parts[k] for k in ("occupancies", "ref_graph", "ref_forward")], axis=0)
    fast_total = np.sum([parts[k] for k in ("occupancies", "fast_graph", "fast_forward")], axis=0)
    return {
        "structures": len(structures),
        "failures_both_paths": failures,
        "sites_median": float(np.median(sites)),
        "sites_max": int(max(sites)),
        "cpu_s": {k: round(float(np.sum(v)), 2) for k, v in parts.items()},
        "reference_cpu_s": round(float(ref_total.sum()), 2),
        "fast_cpu_s": round(float(fast_total.sum()), 2),
        "speedup": round(float(ref_total.sum() / fast_total.sum()), 2),
        "reference_cpu_s_median": round(float(np.median(ref_total)), 4),
        "fast_cpu_s_median": round(float(np.median(fast_total)), 4),
        "reference_cpu_s_max": round(float(ref_total.max()), 3),
        "fast_cpu_s_max": round(float(fast_total.max()), 3),
        "max_abs_diff_pooled": worst,
    }


def reference_graph(structure: Structure, occ: np.ndarray) -> Any:
    """CHGNet's converter on the placeholder structure (the reference path's first half)."""
    from miscreen.featurize import pretrained as P

    return P.model().graph_converter(P.placeholder(structure, occ))


def fast_forward(graph: Any, occ: np.ndarray) -> np.ndarray:
    """The truncated forward from the mixed first-layer vectors (the fast path's second half)."""
    from miscreen.featurize import pretrained as P

    return P.atom_features([graph], P.site_inputs(occ))[0]


def reference_forward(graph: Any, occ: np.ndarray) -> np.ndarray:
    """CHGNet's full forward with the mixed embedding (the reference path's second half)."""
    import torch

    from miscreen.featurize import pretrained as P

    with torch.no_grad(), P.mixed_embedding(P.site_inputs(occ)):
        pred = P.model()([graph], task="e", return_atom_feas=True)
    return pred["atom_fea"][0].numpy().astype(np.float64)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--candidates", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    os.environ.setdefault("MISCREEN_MIRROR", str(REPO.parent / "shared" / "data"))
    import torch

    from miscreen.featurize import pretrained as P

    torch.set_num_threads(1)
    sets = {
        "obelix_train_cifs": training_structures(),
        "snapshot_candidates": candidate_structures(args.candidates, args.seed),
    }
    P.model()
    P.embed([sets["snapshot_candidates"][0]])  # warm-up, not timed
    load_before = os.getloadavg()
    start = time.perf_counter()
    result = {
        "question": "issue 23: CPU seconds of the pooled CHGNet features, fast path vs CHGNet's "
        "own path (its converter and full forward), same structures, same script",
        "threads": torch.get_num_threads(),
        "nice": os.nice(0),
        "cpus": os.cpu_count(),
        "candidates_seed": args.seed,
        "sets": {name: time_set(structures) for name, structures in sets.items()},
        "wall_s": round(time.perf_counter() - start, 1),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
