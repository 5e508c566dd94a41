"""Stability estimate benchmark: CHGNet energies against a CHGNet hull of the snapshots'
reference phases, scored on snapshot rows whose ``e_above_hull`` is known.

Run as ``nice -n 10 .venv/bin/python benchmarks/stability.py``; writes
``results/bench/stability.json`` and prints it. CHGNet energies are cached in
``results/bench/energies.sqlite`` (``--cache-dir``), so a rerun recomputes nothing; the
seconds per structure are those measured when each energy was computed. Rows: the
Li-containing mp-2018 materials with a known ``e_above_hull``; scores for all of them and
for those whose elements all have an elemental phase in the snapshots (the others get an
elemental energy fitted to DFT formation energies, see ``screen.stability``). Each scored
row is held out of the hull it is scored against, with every other snapshot entry of the
same reduced formula and space group (matbench-dielectric repeats many mp-2018 structures).

Reported (truth: the snapshot's ``e_above_hull``, from the Materials Project's full hull):

- ``chgnet_hull``: ``mae_ev_per_atom``, ``f1_stable`` (stable: ``e_above_hull`` <= 0.05
  eV/atom), ``n``, ``s_per_structure`` (CHGNet single points, wall seconds per structure
  computed, references included);
- baselines in the same run: ``all_stable`` (every row called stable), ``dft_hull_held_out``
  (the snapshot's own DFT formation energies, same held-out references: what the snapshots
  alone can say, i.e. how incomplete their hulls are), ``dft_hull_row_included`` (the same
  with only the row itself as the candidate: should reproduce the truth where the snapshot
  holds every phase MP had);
- ``chgnet_vs_dft_same_refs``: CHGNet hull against ``dft_hull_held_out`` (the potential's
  error alone, hull incompleteness removed);
- ``formation_energy_check``: CHGNet formation energies (CHGNet elemental references)
  against the snapshot's DFT ones, mean signed error per anion, to check that CHGNet's
  energies already carry the MP anion corrections (uncorrected oxides would sit about
  +0.7 eV per O atom above the DFT values);
- ``relax_cost``: seconds per structure of a ``--relax-steps`` relaxation on a few rows.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Composition

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "bench" / "stability.json"
SHARED = Path(os.environ.get("MISCREEN_MIRROR", REPO.parent / "shared" / "data"))
os.environ.setdefault("MISCREEN_MIRROR", str(SHARED))
STABLE = 0.05  # eV/atom
ANIONS = ("O", "S", "N", "Cl", "Br", "I", "Se", "Te", "P", "Sb", "As", "H", "Si")


def _f1(pred: np.ndarray, truth: np.ndarray) -> float:
    p, t = pred <= STABLE, truth <= STABLE
    tp = float(np.sum(p & t))
    return 2 * tp / (np.sum(p) + np.sum(t)) if (np.sum(p) + np.sum(t)) else float("nan")


def _scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """MAE, F1 of the stable class, and the share of truly unstable rows called unstable
    (most snapshot rows are stable, so F1 alone says little)."""
    ok = np.isfinite(pred) & np.isfinite(truth)
    unstable = ok & (truth > STABLE)
    return {
        "mae_ev_per_atom": float(np.mean(np.abs(pred[ok] - truth[ok]))),
        "f1_stable": _f1(pred[ok], truth[ok]),
        "recall_unstable": float(np.mean(pred[unstable] > STABLE)) if unstable.any() else None,
        "n": int(ok.sum()),
        "n_unstable": int(unstable.sum()),
    }


def _load() -> pd.DataFrame:
    from miscreen import schema as S
    from miscreen.config import JsonlSource
    from miscreen.fetch.sources import load_source

    mp = load_source(JsonlSource(dataset="mp-2018", require_elements=())).records
    mbd = load_source(
        JsonlSource(
            dataset="matbench-dielectric", id_field="row", id_prefix="mbd-", require_elements=()
        )
    ).records
    return S.concat(mp, mbd)


def _formation_check(refs, calc) -> dict[str, object]:
    """CHGNet formation energies (lowest elemental phase as reference) minus DFT ones."""
    from miscreen import schema as S
    from miscreen.screen.stability import FORMATION_ENERGY

    mu: dict[str, float] = {}
    for rid, e in calc.memory_by_id.items():
        i = refs.ids.index(rid)
        if len(refs.elements[i]) == 1:
            el = next(iter(refs.elements[i]))
            mu[el] = min(mu.get(el, np.inf), e)
    diffs: list[tuple[str, float]] = []
    for rid, e in calc.memory_by_id.items():
        i = refs.ids.index(rid)
        ef = refs.value(i, FORMATION_ENERGY)
        if len(refs.elements[i]) < 2 or not np.isfinite(ef) or not refs.elements[i] <= set(mu):
            continue
        comp = Composition(refs.table.at[i, S.COMPOSITION]).fractional_composition
        ef_chg = e - sum(x * mu[el.symbol] for el, x in comp.items())
        anion = next((a for a in ANIONS if a in refs.elements[i]), "other")
        diffs.append((anion, ef_chg - ef))
    frame = pd.DataFrame(diffs, columns=["anion", "diff"])
    by = frame.groupby("anion")["diff"].agg(["mean", "count"]).round(4)
    return {
        "n": len(frame),
        "mae_ev_per_atom": float(frame["diff"].abs().mean()),
        "mean_signed_by_anion": by.to_dict(orient="index"),
    }


def _seconds_per_structure(calc) -> float:
    """Mean seconds of the energies this run used, as stored when each was computed."""
    if calc.cache is None:
        return calc.seconds_per_structure
    used = set(calc.memory)
    rows = sqlite3.connect(calc.cache.path).execute(
        "SELECT fp, seconds FROM energies WHERE setting=?", [calc.setting]
    )
    seconds = [s for fp, s in rows if fp in used]
    return float(np.mean(seconds)) if seconds else float("nan")


class _Recording:
    """An EnergyCalculator wrapper remembering energies by id (for the formation check)."""

    def __init__(self, calc) -> None:
        self.calc = calc
        self.memory_by_id: dict[str, float] = {}

    def energies(self, structures):
        out = self.calc.energies(structures)
        self.memory_by_id.update(out)
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--max-rows", type=int, default=0, help="0: every eligible row")
    parser.add_argument("--cache-dir", type=Path, default=OUT.parent)
    parser.add_argument("--relax-rows", type=int, default=4)
    parser.add_argument("--relax-steps", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from miscreen import schema as S
    from miscreen.screen.energies import EnergyCalculator, chgnet_potential
    from miscreen.screen.stability import (
        FORMATION_ENERGY,
        References,
        chgnet_e_above_hull,
        dft_e_above_hull,
    )

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    table = _load()
    refs = References(table)
    t_load = time.perf_counter() - t0
    elemental = {next(iter(e)) for e in refs.elements if len(e) == 1}
    is_mp = ~table[S.ID].astype(str).str.startswith("mbd-")
    known = pd.to_numeric(table[S.E_HULL], errors="coerce").notna()
    li = pd.Series(["Li" in e for e in refs.elements], index=table.index)
    rows = table[is_mp & known & li]
    complete = pd.Series([refs.elements[i] <= elemental for i in rows.index], index=rows.index)
    eligible = rows
    if args.max_rows:
        eligible = eligible.sample(n=min(args.max_rows, len(eligible)), random_state=0)
    calc = EnergyCalculator(cache_dir=args.cache_dir)
    rec = _Recording(calc)
    key = list(zip(table[S.FORMULA], table[S.SPACEGROUP], strict=True))
    out = []
    for i in eligible.index:
        rid = str(table.at[i, S.ID])
        twins = [refs.ids[j] for j in range(len(refs.ids)) if key[j] == key[i]]
        structure = refs.structure(i)
        truth = float(table.at[i, S.E_HULL])
        comp = structure.composition
        ef = float(table.at[i, FORMATION_ENERGY])
        try:
            chg, phases, warning = chgnet_e_above_hull(rid, structure, refs, rec, exclude=twins)
        except Exception as exc:
            chg, phases, warning = float("nan"), "", f"failed: {exc}"
        dft_out, _ = dft_e_above_hull(comp, ef, refs, exclude=twins)
        dft_in, _ = dft_e_above_hull(comp, ef, refs, exclude=[rid])
        out.append(
            {
                "id": rid,
                "formula": comp.reduced_formula,
                "truth": truth,
                "chgnet_hull": chg,
                "dft_hull_held_out": dft_out,
                "dft_hull_row_included": dft_in,
                "hull_phases": phases,
                "hull_warning": warning,
                "elemental_phases": bool(complete[i]),
            }
        )
        if len(out) % 10 == 0:
            print(f"{len(out)}/{len(eligible)} rows, {calc.computed} energies", file=sys.stderr)
    res = pd.DataFrame(out)
    truth = res["truth"].to_numpy()
    frac_stable = float(np.mean(truth <= STABLE))
    full = res["elemental_phases"].to_numpy(bool)
    relax_rows = [refs.structure(i) for i in eligible.index[: args.relax_rows]]
    t1 = time.perf_counter()
    chgnet_potential(relax_steps=args.relax_steps)(relax_rows)
    relax_s = (time.perf_counter() - t1) / max(len(relax_rows), 1)
    result = {
        "rows": "Li-containing mp-2018 rows with a known e_above_hull",
        "n_li_known": len(rows),
        "n_no_elemental_reference": int((~complete).sum()),
        "stable_threshold_ev_per_atom": STABLE,
        "chgnet_hull": {
            **_scores(res["chgnet_hull"].to_numpy(), truth),
            "s_per_structure": _seconds_per_structure(calc),
            "n_structures_computed": calc.computed,
            "threads": args.threads,
        },
        "baseline_all_stable": {
            "mae_ev_per_atom": float(np.mean(np.abs(truth))),
            "f1_stable": 2 * frac_stable / (1 + frac_stable),
            "n": len(res),
        },
        "chgnet_hull_rows_with_elemental_phases": _scores(
            res["chgnet_hull"].to_numpy()[full], truth[full]
        ),
        "baseline_all_stable_rows_with_elemental_phases": {
            "f1_stable": _f1(np.zeros(int(full.sum())), truth[full]),
            "n": int(full.sum()),
        },
        "baseline_dft_hull_held_out": _scores(res["dft_hull_held_out"].to_numpy(), truth),
        "dft_hull_row_included": _scores(res["dft_hull_row_included"].to_numpy(), truth),
        "chgnet_vs_dft_same_refs": _scores(
            res["chgnet_hull"].to_numpy(), res["dft_hull_held_out"].to_numpy()
        ),
        "rows_with_hull_warning": int((res["hull_warning"] != "").sum()),
        "formation_energy_check": _formation_check(refs, rec),
        "relax_cost": {
            "steps": args.relax_steps,
            "rows": len(relax_rows),
            "s_per_structure": relax_s,
        },
        "seconds": {"load": t_load, "total": time.perf_counter() - t0},
        "per_row": res.round(4).to_dict(orient="records"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, default=float))
    tmp.replace(args.out)
    print(json.dumps({k: v for k, v in result.items() if k != "per_row"}, indent=2, default=float))


if __name__ == "__main__":
    main()
