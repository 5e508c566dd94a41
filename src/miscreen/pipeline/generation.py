"""Wiring of ``miscreen generate``: parents -> substituted candidates (the plan) -> one
relaxation each (run by :mod:`miscreen.pipeline.generation_jobs`: here, in processes, as a
SLURM array or on Dask) -> hull, known-material check, prediction with interval, score and
BVSE barrier -> ``generated.csv`` and a structure store.

The plan (``generate/plan.json``) lists every candidate with its parent, substitution and
probability, and the known material it is where it is one; candidates that are known
materials are left out of it (``generate.drop_known``) except a parent itself, which stays
as the family's reference point (``is_parent``). Each relaxation writes its own result file
(``generate/relaxed/``), so a rerun or a resubmitted array skips what is done. The finish
step reads them all (an unrelaxed candidate is a failure with the reason) and writes, through
the run catalog, ``generated.csv``/``.parquet``, the store ``generated_store/`` that a config
can list as a ``store`` source, the stage's failures and its manifest entry.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict
from pathlib import Path

import pandas as pd
from pymatgen.core import Structure

from miscreen import atomic_io, batch
from miscreen import schema as S
from miscreen.config import Config
from miscreen.errors import UserError
from miscreen.fetch.parsing import structure_from_json
from miscreen.fetch.records import structure_record
from miscreen.fetch.sources import load_references
from miscreen.generate import hull
from miscreen.generate.duplicates import duplicates
from miscreen.generate.relax import (
    RelaxSettings,
    read_result,
    result_path,
)
from miscreen.generate.substitute import (
    Generated,
    Substitutions,
    data_mined,
    explicit,
    ordered_parent,
    substituted_parent,
)
from miscreen.pipeline.stages import write_manifest
from miscreen.pipeline.verification import candidate_records, ranked_candidates, top_ids
from miscreen.potentials import Relaxation, get_potential
from miscreen.store.structures import SourceQuery, StructureStore
from miscreen.verify import barrier_table
from miscreen.verify.md_protocol import MDError

log = logging.getLogger(__name__)

STAGE = "generate"
SOURCE = "generated"
PARENT_ID, SUBSTITUTION, PROBABILITY = "parent_id", "substitution", "substitution_probability"
IS_PARENT, DUPLICATE, LI_CHANGE, LI_ADDED = "is_parent", "known_duplicate", "li_change", "li_added"
RELAX_COLUMNS = ("relax_energy_ev_per_atom", "relax_max_force_ev_a", "relax_steps",
                 "relax_converged", "relax_stopped", "relax_seconds")  # fmt: skip
E_ABOVE_HULL_EV = "e_above_hull_ev"  # the same value as e_above_hull, named with its unit
# which structure the features, prediction, score and BVSE barrier were taken from
# (``generate.predict_from``): "relaxed" or "substituted_parent"
PREDICTION_INPUT = "prediction_input"
BVSE_RELAXED = "bvse_e3d_ev_relaxed"  # the relaxed cell's barrier when another is predicted
RELAXED, SUBSTITUTED_PARENT = "relaxed", "substituted_parent"


def settings(cfg: Config) -> RelaxSettings:
    g = cfg.generate
    return RelaxSettings(g.potential, g.fmax, g.relax_steps, g.relax_time_limit_s, g.device)


# ----------------------------------------------------------------------- the plan


def parents(cfg: Config) -> list[tuple[str, Structure]]:
    """The parents the config names: listed ids, the run's top ranked, structure files."""
    p = cfg.generate.parents
    ids = [*p.ids, *(top_ids(ranked_candidates(cfg), p.top) if p.top else [])]
    out = []
    if ids:
        rows = {str(r[S.ID]): r for r in candidate_records(cfg, ids).to_dict("records")}
        for pid in dict.fromkeys(ids):
            row = rows.get(pid)
            if row is None or not isinstance(row.get(S.STRUCTURE), str):
                raise UserError(
                    f"generate: parent {pid} has no structure in the configured sources"
                )
            out.append((pid, structure_from_json(row[S.STRUCTURE])))
    for path in p.files:
        try:
            out.append((f"file:{Path(path).stem}", Structure.from_file(path)))
        except (OSError, ValueError) as exc:
            raise UserError(f"generate: parent file {path} does not read: {exc}") from None
    if not out:
        raise UserError("generate: no parents; set generate.parents (top, ids or files)")
    return out


def substitutions(cfg: Config, pid: str, structure: Structure) -> Substitutions:
    """One parent's candidates (ordered first), by the explicit map or the data."""
    g = cfg.generate
    ordered = ordered_parent(structure)
    if g.substitutions:
        choices = {el: list(new) for el, new in g.substitutions.items()}
        return explicit(ordered, pid, choices, g.aliovalent)
    return data_mined(ordered, pid, g.min_probability, g.keep_elements, g.max_per_parent)


def reference_table(cfg: Config) -> pd.DataFrame:
    """The reference phases and pool rows: ``screen.references``, else the candidate
    sources (as the default run's stability estimate)."""
    return load_references(cfg.screen.references or cfg.candidates, cfg.data_path).records


def plan_generation(cfg: Config, given: list[tuple[str, Structure]] | None = None) -> dict:
    """Substitute every parent, check the candidates against known materials and write the
    plan -> it (``candidates``: the ones to relax, ``dropped`` and ``skipped`` with reasons).
    An unknown ``generate.potential`` stops it before any work, naming the potentials."""
    get_potential(cfg.generate.potential)
    cands, skipped, as_given = [], [], {}
    for pid, structure in given or parents(cfg):
        as_given[pid] = structure.as_dict()
        try:
            subs = substitutions(cfg, pid, structure)
        except (MDError, ValueError) as exc:
            skipped.append({PARENT_ID: pid, SUBSTITUTION: "", "reason": str(exc)})
            continue
        cands += subs.candidates
        skipped += [{PARENT_ID: pid, SUBSTITUTION: n, "reason": r} for n, r in subs.skipped]
    refs = hull.reference_phases(reference_table(cfg), hull.ALL)
    dups = duplicates(cands, refs, cfg.run.known_materials)
    kept, dropped = [], []
    for c in cands:
        what, hits = dups.get(c.id, ("", []))
        entry = _plan_entry(c, what, hits)
        if what and cfg.generate.drop_known and c.substitution:
            dropped.append({k: v for k, v in entry.items() if k != S.STRUCTURE})
        else:
            kept.append(entry)
    plan = {"setting": settings(cfg).key, "candidates": kept, "dropped": dropped,
            "skipped": skipped, "parents": as_given}  # fmt: skip
    atomic_io.write_json(cfg.run.generate_plan, plan)
    log.info("generate: %d candidates, %d known dropped, %d skipped", len(kept), len(dropped),
             len(skipped))  # fmt: skip
    return plan


def _plan_entry(c: Generated, what: str, hits: list[str]) -> dict:
    return {
        S.ID: c.id,
        PARENT_ID: c.parent_id,
        SUBSTITUTION: c.substitution,
        PROBABILITY: None if math.isnan(c.probability) else c.probability,
        LI_CHANGE: c.li_change,
        LI_ADDED: [asdict(a) for a in c.added_li],
        IS_PARENT: not c.substitution,
        DUPLICATE: what,
        "reference_matches": hits,
        S.STRUCTURE: c.structure.as_dict(),
    }


def read_plan(cfg: Config) -> dict:
    path = cfg.run.generate_plan
    if not path.exists():
        raise UserError(f"{path} does not exist: run `miscreen generate` first")
    return atomic_io.read_json(path)


def plan_items(plan: dict) -> list[tuple[int, str, Structure]]:
    """(index, id, structure) of every candidate of a plan."""
    return [
        (i, c[S.ID], Structure.from_dict(c[S.STRUCTURE])) for i, c in enumerate(plan["candidates"])
    ]


# ----------------------------------------------------------------------- the finish


def finish_generation(
    cfg: Config, predict: bool = True, reasons: dict[str, str] | None = None
) -> pd.DataFrame:
    """Hull, prediction, score and BVSE of every relaxed candidate; writes the outputs
    (``predict`` False, or no trained models: no prediction columns; ``reasons``: why a
    candidate is not relaxed, by id) -> the table."""
    plan, relax = read_plan(cfg), settings(cfg)
    refs = hull.reference_phases(reference_table(cfg), cfg.generate.hull_references)
    calc = hull.hull_calculator(relax, cfg.cache_path)
    rows, failures = [], []
    for i, cid, start in plan_items(plan):
        entry = plan["candidates"][i]
        result = read_result(result_path(cfg.run.generate_relaxed, i), start, relax)
        if result is None:
            why = (reasons or {}).get(cid, "not relaxed (its array task failed or has not run)")
            why += "; rerun to resume"
            failures.append(S.failure(cid, SOURCE, STAGE, why))
            continue
        e_hull = hull.e_above_hull(cid, result.structure, result.energy_ev_per_atom, refs, calc,
                                   hull.method_name(relax), entry["reference_matches"])  # fmt: skip
        rows.append(_row(entry, result, e_hull))
    if not rows:
        raise UserError(f"generate: no relaxed candidate; see {cfg.run.failures}")
    records = S.ensure_record_columns(pd.DataFrame(rows))
    write_store(cfg, records)
    inputs = prediction_inputs(plan, records, cfg.generate.predict_from)
    table = inputs
    if predict and cfg.models.routing.exists():
        table, pred_failures = batch.screen_records(cfg, inputs)
        failures += pred_failures.to_dict("records")
    if cfg.generate.bvse:
        table, bvse_failures = with_barriers(cfg, table, inputs)
        failures += bvse_failures.to_dict("records")
        if (inputs[PREDICTION_INPUT] != RELAXED).any():
            table = table.merge(relaxed_barriers(cfg, records), on=S.ID, how="left")
    table = with_record_columns(table, records).drop(columns=[S.STRUCTURE], errors="ignore")
    atomic_io.write_table(table, cfg.run.generated_csv)
    atomic_io.write_table(table, cfg.run.generated_parquet)
    cfg.run.write_failures(STAGE, pd.DataFrame(failures, columns=list(S.FAILURE_COLUMNS)))
    entry = {"potential": relax.potential, "setting": relax.key, "candidates": len(table),
             "dropped_known": len(plan["dropped"]), "skipped": len(plan["skipped"]),
             "energies_computed": calc.computed}  # fmt: skip
    write_manifest(cfg, STAGE, entry)
    return table


def _row(entry: dict, result: Relaxation, e_hull: tuple[float, str, str, str]) -> dict:
    values = (result.energy_ev_per_atom, result.max_force_ev_a, result.steps,
              result.converged, result.stopped, result.seconds)  # fmt: skip
    meta = {k: entry[k] for k in (PARENT_ID, SUBSTITUTION, PROBABILITY, IS_PARENT, DUPLICATE)}
    meta |= {LI_CHANGE: entry.get(LI_CHANGE, 0), LI_ADDED: json.dumps(entry.get(LI_ADDED, []))}
    extra = {
        **meta,
        **dict(zip(RELAX_COLUMNS, values, strict=True)),
        **dict(zip(hull.HULL_COLUMNS, e_hull, strict=True)),
        E_ABOVE_HULL_EV: e_hull[0],
    }
    return structure_record(entry[S.ID], SOURCE, result.structure, **extra)


def prediction_inputs(plan: dict, records: pd.DataFrame, predict_from: str) -> pd.DataFrame:
    """The records the model and BVSE see, with ``prediction_input`` naming the structure:
    the relaxed cells, or (``substituted_parent``) each candidate's parent as given with the
    substitution on every site at the relaxed cell's volume per atom
    (:func:`~miscreen.generate.substitute.substituted_parent`); a row whose parent the plan
    does not hold (a plan written before) keeps its relaxed cell."""
    if predict_from == RELAXED:
        return records.assign(**{PREDICTION_INPUT: RELAXED})
    given = plan.get("parents", {})
    rows = []
    for r in records.to_dict("records"):
        parent = given.get(r[PARENT_ID])
        if parent is None:
            rows.append({**r, PREDICTION_INPUT: RELAXED})
            continue
        relaxed = structure_from_json(r[S.STRUCTURE])
        cell = substituted_parent(Structure.from_dict(parent), relaxed, r[SUBSTITUTION])
        extra = {k: v for k, v in r.items() if k not in S.RECORD_COLUMNS}
        extra[PREDICTION_INPUT] = SUBSTITUTED_PARENT
        rows.append(structure_record(r[S.ID], str(r[S.SOURCE]), cell, **extra))
    return S.ensure_record_columns(pd.DataFrame(rows))


def with_record_columns(table: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the relaxed cells' record columns (formula, composition, lattice,
    space group, structure) whatever structure was predicted: the candidates are the
    relaxed cells."""
    by_id = records.set_index(S.ID)
    out = table.copy()
    for column in S.RECORD_COLUMNS:
        if column != S.ID and column in by_id:
            out[column] = out[S.ID].map(by_id[column])
    return out


def relaxed_barriers(cfg: Config, records: pd.DataFrame) -> pd.DataFrame:
    """The BVSE 3-D barrier of each relaxed cell (``bvse_e3d_ev_relaxed``), beside the
    barrier of the structure the candidate is predicted from."""
    barriers, _ = barrier_table(
        records[[S.ID, S.SOURCE, S.COMPOSITION, S.STRUCTURE]],
        time_limit_s=cfg.features.time_limit_s,
    )
    barriers = barriers.reset_index() if S.ID not in barriers else barriers
    return barriers[[S.ID, S.BVSE_E3D]].rename(columns={S.BVSE_E3D: BVSE_RELAXED})


def write_store(cfg: Config, records: pd.DataFrame) -> None:
    """The relaxed candidates as a structure store (``kind: store`` in a config reads it)."""
    store = StructureStore(cfg.run.generated_store)
    sq = SourceQuery(source=SOURCE, provider="miscreen generate", query={"run": cfg.run_name})
    store.write_page(sq, 0, records, S.empty_failures(), None)
    store.finalize(config=cfg.model_dump(mode="json"))


def with_barriers(
    cfg: Config, table: pd.DataFrame, records: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """BVSE barrier columns of every generated candidate joined to ``table``."""
    barriers, failures = barrier_table(
        records[[S.ID, S.SOURCE, S.COMPOSITION, S.STRUCTURE]],
        time_limit_s=cfg.features.time_limit_s,
    )
    barriers = barriers.reset_index() if S.ID not in barriers else barriers
    kept = table.drop(columns=[c for c in barriers.columns if c != S.ID], errors="ignore")
    return kept.merge(barriers, on=S.ID, how="left"), failures


def generated_lines(table: pd.DataFrame) -> list[str]:
    """One line per generated candidate: formula, substitution, hull, prediction."""
    out = []
    for r in table.to_dict("records"):
        pred = r.get(S.PRED)
        pred_text = "" if pred is None or pd.isna(pred) else f", log10 σ {pred:.2f}"
        out.append(
            f"{r[S.ID]}: {r[S.FORMULA]}, E_hull {r[S.E_HULL]:.3f} eV/atom, max force "
            f"{r['relax_max_force_ev_a']:.3f} eV/Å{pred_text}"
        )
    return out
