"""The LGPS family found from its parent (issue 24): from the ordered Li10GeP2S12 cell,
generate Li10MP2X12 with M in {Ge, Si, Sn} and X in {S, Se, O}, relax each with a universal
potential, place it on the hull of its chemical system, and predict its conductivity with a
model trained with the LGPS family held out (the standard hold-out of ``miscreen case
lgps``), as Ong et al. (Energy Environ. Sci. 6, 148 (2013)) did by DFT. Beside them, the
aliovalent analogues Li11AlP2X12 (Al3+ for Ge4+, one Li added per formula unit at the
interstitial sites of lowest BVSE site energy) and Li9P3X12 (P5+ for Ge4+, one Li removed)
when the config's map names Al and P with ``aliovalent: true``.

``case.json`` holds per composition the energy above the hull (``e_above_hull_ev``, with
the reference phases used and what the hull lacks), the predicted log10 conductivity with
its 80 % interval, the BVSE barrier, the measured conductivities OBELiX holds for it, and
the issue's checks on the nine isovalent analogues, each with whether it passed and by how
much. The aliovalent analogues are listed apart (``aliovalent_analogues``, with the Li
added or removed and where it went), outside the checks; OBELiX's measurements of their
composition are any structure's, and some are training rows (``held_out`` false). Where the
references of an analogue's own formula carry no DFT energy (OBELiX's Li3PS4 and Li3PO4 for
Li9P3S12 and Li9P3O12), its hull leaves them out, and ``hull_note`` says so: its
``e_above_hull_ev`` then says nothing about its known polymorphs.
"""

from __future__ import annotations

import json
import logging
import time

import numpy as np
import pandas as pd
from pymatgen.core import Composition

from miscreen import atomic_io, batch, pipeline
from miscreen import schema as S
from miscreen.cases.lgps import matches_formula, training_data
from miscreen.config import Config
from miscreen.errors import UserError
from miscreen.fetch.parsing import structure_from_json
from miscreen.generate import hull
from miscreen.generate.hull import OrderedReferences
from miscreen.pipeline import generation, generation_jobs
from miscreen.pipeline.verification import candidate_records
from miscreen.train.routing import save_models

log = logging.getLogger(__name__)

PARENT_ID = "pymatgen:Li10GeP2S12"
METALS, ANIONS = ("Ge", "Si", "Sn"), ("S", "Se", "O")
# Ong et al.'s Li10+-1 analogues: Al3+ (one Li added per formula unit) and P5+ (one removed)
ALIOVALENT = {"Al": "Li11AlP2{anion}12", "P": "Li9P3{anion}12"}
SULFIDES, OXIDES = "S", "O"
HULL_GAP_EV = 0.05  # oxides above every sulfide by at least this much (eV/atom)
PARENT_WINDOW_EV = 0.03  # Si and Sn sulfides within this of the Ge parent (eV/atom)
SOURCE = (
    "S. P. Ong et al., Phase stability, electrochemical stability and ionic conductivity of "
    "the Li10+-1MP2X12 (M = Ge, Si, Sn, Al or P, and X = O, S or Se) family of superionic "
    "conductors, Energy Environ. Sci. 6, 148 (2013)"
)


def formula(metal: str, anion: str) -> str:
    return f"Li10{metal}P2{anion}12"


def aliovalent_formula(metal: str, anion: str) -> str:
    return ALIOVALENT[metal].format(anion=anion)


def train_held_out(cfg: Config) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train on OBELiX without the LGPS family (``lgps.training_data``), save the models
    and the run's measured materials -> (the training rows, the held-out rows), with their
    measurements."""
    train, heldout = training_data(cfg, strict=False)
    save_models(pipeline.train(cfg, train), cfg.models)
    atomic_io.write_table(pipeline.known_materials([train.records]), cfg.run.known_materials)
    return train.records, heldout


def parent_records(cfg: Config) -> pd.DataFrame:
    """The Li10GeP2S12 row of the first configured source (pymatgen's disordered cell)."""
    rows = candidate_records(cfg.model_copy(update={"candidates": cfg.candidates[:1]}),
                             [PARENT_ID])  # fmt: skip
    if rows.empty or not isinstance(rows.iloc[0][S.STRUCTURE], str):
        raise UserError(f"lgps-family: {PARENT_ID} is not the first candidate source's")
    return rows.head(1)


def as_given(cfg: Config, rows: pd.DataFrame) -> dict:
    """The model's prediction for the parent as the source gives it (disordered, not
    relaxed): beside the generated parent's, it shows what ordering and relaxing change."""
    ranked, _ = batch.screen_records(cfg, rows)
    r = ranked.iloc[0]
    return {
        "structure": f"{PARENT_ID} as the source gives it (partial occupancies, unrelaxed)",
        "pred_log10_sigma": _value(r, S.PRED),
        "interval_80": [_value(r, S.LOWER), _value(r, S.UPPER)],
        "model": r.get("model"),
    }  # fmt: skip


def measured(heldout: pd.DataFrame, target: str) -> list[dict]:
    """OBELiX's measurements of ``target`` among the held-out rows."""
    hits = heldout[heldout[S.COMPOSITION].map(lambda c: matches_formula(c, target))]
    return [
        {"id": str(r[S.ID]), "log10_sigma": float(r[S.TARGET]),
         "sigma_mS_cm": float(1e3 * 10 ** r[S.TARGET])}
        for r in hits.to_dict("records") if pd.notna(r[S.TARGET])
    ]  # fmt: skip


def measured_anywhere(train: pd.DataFrame, heldout: pd.DataFrame, target: str) -> list[dict]:
    """OBELiX's measurements of ``target``'s composition, any structure, training rows
    (``held_out`` false: the model has seen them) and held-out rows alike."""
    return [{**m, "held_out": False} for m in measured(train, target)] + [
        {**m, "held_out": True} for m in measured(heldout, target)
    ]


def _value(row: pd.Series, column: str) -> float | None:
    v = row.get(column)
    return None if v is None or pd.isna(v) else float(v)


def _generated_row(table: pd.DataFrame, target: str) -> pd.Series | None:
    rows = table[table[S.COMPOSITION].map(lambda c: matches_formula(c, target))]
    return None if rows.empty else rows.iloc[0]


def compositions(table: pd.DataFrame, heldout: pd.DataFrame) -> dict[str, dict]:
    """Per generated isovalent composition, the case's numbers."""
    out = {}
    for metal in METALS:
        for anion in ANIONS:
            target = formula(metal, anion)
            r = _generated_row(table, target)
            out[target] = (
                {"generated": False} if r is None else numbers(r, measured(heldout, target))
            )
    return out


def aliovalent_analogues(
    table: pd.DataFrame,
    train: pd.DataFrame,
    heldout: pd.DataFrame,
    polymorphs: dict[str, list[str]] | None = None,
) -> dict[str, dict]:
    """Per aliovalent composition the config generated (Al or P in the map), the case's
    numbers, the Li added or removed (:func:`lithium`) and, by formula, the reference
    phases of its own reduced formula that its hull leaves out (``polymorphs``: rows
    without a DFT energy, e.g. OBELiX's Li3PS4 for Li9P3S12; see
    :func:`miscreen.generate.hull.e_above_hull`), with what that means for its
    ``e_above_hull_ev``."""
    out = {}
    for metal in ALIOVALENT:
        for anion in ANIONS:
            target = aliovalent_formula(metal, anion)
            r = _generated_row(table, target)
            if r is None:
                continue
            found = measured_anywhere(train, heldout, target)
            out[target] = {**numbers(r, found), **lithium(r)}
            left_out = (polymorphs or {}).get(target, [])
            out[target]["hull_left_out_same_formula"] = left_out
            if left_out:
                out[target]["hull_note"] = (
                    f"the references of its own formula ({', '.join(left_out)}) carry no DFT "
                    "energy and are left out of its hull: e_above_hull_ev compares it with "
                    "other compositions only, not with its known polymorphs"
                )
    return out


def same_formula_left_out(refs: OrderedReferences, formulas: list[str]) -> dict[str, list[str]]:
    """Per formula, the ids of the references of its reduced formula without a DFT energy
    (left out of a candidate's hull)."""
    return {f: refs.same_formula_unranked(Composition(f).reduced_formula) for f in formulas}


def lithium(r: pd.Series) -> dict:
    """The Li per cell a generated row's substitution added (positive; where each went in
    the unrelaxed cell and its BVSE site energy, eV above the landscape's minimum) or
    removed, as ``generated.csv`` records them."""
    added = r.get(generation.LI_ADDED)
    return {
        "li_change_per_cell": int(r.get(generation.LI_CHANGE, 0)),
        "li_added": json.loads(added) if isinstance(added, str) else [],
    }


def numbers(r: pd.Series, found: list[dict]) -> dict:
    """One generated row's numbers in ``case.json``, with the measurements ``found``."""
    return {
        "generated": True,
        "id": r[S.ID],
        "substitution": r[generation.SUBSTITUTION],
        "substitution_probability": _value(r, generation.PROBABILITY),
        "e_above_hull_ev": _value(r, S.E_HULL),
        "hull_phases": r[S.HULL_PHASES].split(",") if r[S.HULL_PHASES] else [],
        "hull_warning": r[S.HULL_WARNING],
        "known_duplicate": r[generation.DUPLICATE],
        "pred_log10_sigma": _value(r, S.PRED),
        "interval_80": [_value(r, S.LOWER), _value(r, S.UPPER)],
        "prediction_input": r.get(generation.PREDICTION_INPUT),
        "bvse_barrier_ev": _value(r, S.BVSE_E3D),
        "bvse_barrier_ev_by_input": barriers_by_input(r),
        "relax_max_force_ev_a": _value(r, "relax_max_force_ev_a"),
        "relax_steps": int(r["relax_steps"]),
        "relax_converged": bool(r["relax_converged"]),
        "measured": found,
    }


def barriers_by_input(row: pd.Series) -> dict[str, float | None]:
    """The BVSE barrier of the structure predicted from and, when that is the substituted
    parent, of the relaxed cell too."""
    chosen = row.get(generation.PREDICTION_INPUT) or generation.RELAXED
    out = {chosen: _value(row, S.BVSE_E3D)}
    if chosen != generation.RELAXED:
        out[generation.RELAXED] = _value(row, generation.BVSE_RELAXED)
    return out


def _values(comps: dict[str, dict], anion: str, key: str) -> dict[str, float]:
    return {
        f: c[key] for f, c in comps.items()
        if c.get("generated") and f.endswith(f"P2{anion}12") and c.get(key) is not None
    }  # fmt: skip


def _check(passed: bool, margin: float | None, detail: str) -> dict:
    """A check: passed, the margin (positive: by how much it passed, negative: missed)."""
    return {"passed": bool(passed), "margin": margin, "detail": detail}


def separation(comps: dict[str, dict], key: str, higher: str, gap: float = 0.0) -> dict:
    """Whether every ``higher`` analogue's ``key`` exceeds every other's by ``gap``."""
    ox, su = _values(comps, OXIDES, key), _values(comps, SULFIDES, key)
    if not ox or not su:
        return _check(False, None, f"no {key} for the oxides or the sulfides")
    lo_ox, hi_ox, lo_su, hi_su = (
        min(ox.values()),
        max(ox.values()),
        min(su.values()),
        max(su.values()),
    )
    margin = (lo_ox - hi_su - gap) if higher == "oxides" else (lo_su - hi_ox - gap)
    text = (f"oxides {lo_ox:.3f}..{hi_ox:.3f}, sulfides {lo_su:.3f}..{hi_su:.3f}; {higher} "
            f"higher by at least {gap:g} wanted")  # fmt: skip
    return _check(margin >= 0, round(margin, 4), text)


def near_parent(comps: dict[str, dict]) -> dict:
    """Whether the Si and Sn sulfides lie within the window of the Ge parent's E_hull."""
    e = _values(comps, SULFIDES, "e_above_hull_ev")
    ge = e.get(formula("Ge", "S"))
    others = {f: v for f, v in e.items() if f != formula("Ge", "S")}
    if ge is None or len(others) < 2:
        return _check(False, None, "missing E_above_hull for a sulfide")
    worst = max(abs(v - ge) for v in others.values())
    text = ", ".join(f"{f} {v - ge:+.3f}" for f, v in others.items()) + f" eV/atom from Ge {ge:.3f}"
    return _check(worst <= PARENT_WINDOW_EV, round(PARENT_WINDOW_EV - worst, 4), text)


def intervals_cover(comps: dict[str, dict]) -> dict:
    """Whether the measured Si and Sn sulfide conductivities lie in the 80 % intervals."""
    misses, parts = [], []
    for metal in ("Si", "Sn"):
        c = comps[formula(metal, "S")]
        lo, hi = c.get("interval_80", [None, None]) if c.get("generated") else (None, None)
        if lo is None or not c["measured"]:
            return _check(False, None, f"no interval or no measurement for {formula(metal, 'S')}")
        for m in c["measured"]:
            v = m["log10_sigma"]
            misses.append(min(v - lo, hi - v))  # distance inside (+) or outside (-) the edge
            parts.append(f"{m['id']} {v:.2f} in [{lo:.2f}, {hi:.2f}]")
    worst = min(misses)
    return _check(worst >= 0.0, round(worst, 4), "; ".join(parts))


def checks(comps: dict[str, dict]) -> dict:
    """The issue's done-when checks (margins in eV/atom, log10 S/cm or eV); the hull checks
    carry what the sulfide hulls lack (an incomplete hull makes a phase look stable)."""
    lacking = {
        f: c["hull_warning"] for f, c in comps.items()
        if c.get("generated") and f.endswith(f"P2{SULFIDES}12") and c["hull_warning"]
    }  # fmt: skip
    on_hull = separation(comps, "e_above_hull_ev", "oxides", HULL_GAP_EV)
    return {
        "oxides_above_sulfides_on_hull": {**on_hull, "sulfide_hulls_lack": lacking},
        "oxides_slower_predicted": separation(comps, "pred_log10_sigma", "sulfides"),
        "oxides_higher_bvse_barrier": separation(comps, "bvse_barrier_ev", "oxides"),
        "si_sn_sulfides_near_parent": {**near_parent(comps), "sulfide_hulls_lack": lacking},
        "measured_si_sn_inside_80_intervals": intervals_cover(comps),
    }


def run_case(cfg: Config) -> dict:
    """Train with the family held out, generate, and write ``case.json``."""
    started = time.perf_counter()
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    train, heldout = train_held_out(cfg)
    trained = time.perf_counter()
    rows = parent_records(cfg)
    given = [(PARENT_ID, structure_from_json(rows.iloc[0][S.STRUCTURE]))]
    plan = generation.plan_generation(cfg, given)
    generation_jobs.relax_local(cfg, plan)
    relaxed = time.perf_counter()
    table = generation.finish_generation(cfg)
    comps = compositions(table, heldout)
    refs = hull.reference_phases(generation.reference_table(cfg), cfg.generate.hull_references)
    formulas = [aliovalent_formula(m, x) for m in ALIOVALENT for x in ANIONS]
    polymorphs = same_formula_left_out(refs, formulas)
    relax_s = table["relax_seconds"].to_numpy(float)
    summary = {
        "parent": PARENT_ID,
        "potential": cfg.generate.potential,
        "predict_from": cfg.generate.predict_from,
        "relax": {"steps": cfg.generate.relax_steps, "fmax": cfg.generate.fmax,
                  "time_limit_s": cfg.generate.relax_time_limit_s,
                  "seconds_per_structure": float(np.nanmean(relax_s)) if len(relax_s) else None},
        "heldout_rows": len(heldout),
        "compositions": comps,
        "aliovalent_analogues": aliovalent_analogues(table, train, heldout, polymorphs),
        "parent_as_given": as_given(cfg, rows),
        "checks": checks(comps),
        "reference": SOURCE,
        "timing_s": {"train": round(trained - started, 1), "relax": round(relaxed - trained, 1),
                     "hull_predict_bvse": round(time.perf_counter() - relaxed, 1)},
        "runtime_s": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    atomic_io.write_json(cfg.run.case_json, summary)
    entry = {"case": "lgps-family", "runtime_s": summary["runtime_s"]}
    cfg.run.update_manifest(cfg.model_dump(mode="json"), cfg.seed, "case", entry)
    return summary


def headline(summary: dict) -> dict:
    """What ``miscreen case lgps-family`` prints: per composition the key numbers, and the
    checks."""
    rows = {
        f: {k: c.get(k) for k in ("e_above_hull_ev", "pred_log10_sigma", "interval_80",
                                  "bvse_barrier_ev")}
        for f, c in {**summary["compositions"], **summary.get("aliovalent_analogues", {})}.items()
    }  # fmt: skip
    return {"compositions": rows, "checks": summary["checks"], "runtime_s": summary["runtime_s"]}
