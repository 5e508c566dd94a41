"""Checks of the rows that could reach the top, run when the shards are merged (the ranking
is global, so they cannot run shard by shard):

1. **band gap** for every row the other filters keep, when ``screen.min_band_gap`` is set:
   the source's, else an estimate with its method and sd (:mod:`miscreen.screen.band_gap`,
   fitted on the reference phases' known gaps);
2. **stability** for the best ``screen.stability_top`` rows whose source gives none: a
   match to a reference phase with a known energy above the hull, else a CHGNet energy
   against the hull of the reference phases of its chemical system
   (:mod:`miscreen.screen.stability`; energies cached in the feature-cache folder). The
   ranking is redone after each round, so rows that rise into the top once others are
   removed are estimated too (at most three rounds' worth);
3. **BVSE barriers** for the best ``screen.bvse_top`` rows (:mod:`miscreen.verify`).

Reference phases are ``screen.references`` (default: the candidate sources), every row of
each whatever its elements; the hulls are built from those with a DFT energy above the hull
(matbench-dielectric rows carry none). The checks run where the merge runs: in this process for
``miscreen run`` and ``merge``, on the merge job's node under SLURM.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from miscreen import schema as S
from miscreen.config import Config
from miscreen.featurize import FeatureOptions
from miscreen.fetch.sources import Loaded, load_candidates, load_references
from miscreen.progress import Progress
from miscreen.screen.band_gap import N_FOLDS, estimate_gaps, fit_gap_model, gap_training_rows
from miscreen.screen.energies import EnergyCalculator
from miscreen.screen.stability import stability_table
from miscreen.train.splits import chemsys_groups
from miscreen.verify import BVSE_COLUMNS, barrier_table

STABILITY_COLUMNS = (S.STABILITY_METHOD, S.HULL_PHASES, S.HULL_WARNING)
ROUNDS = 3
Ranker = Callable[[pd.DataFrame], pd.DataFrame]  # a table -> ranked (batch.rank_screened)


@dataclass
class TopChecks:
    """The candidate table with the checks' columns, their failures and a manifest entry."""

    table: pd.DataFrame
    failures: pd.DataFrame
    provenance: dict = field(default_factory=dict)


def check_top(
    cfg: Config, predicted: pd.DataFrame, rank: Ranker, calc: EnergyCalculator | None = None
) -> TopChecks:
    """Band gaps for the rows the filters keep, stability and BVSE for the best; ``rank``
    ranks a table the way the run does (``batch.rank_screened``). Nothing is loaded or
    computed when the config asks for none of them."""
    screen = cfg.screen
    if screen.min_band_gap is None and not screen.stability_top and not screen.bvse_top:
        return TopChecks(predicted, S.empty_failures())
    options = FeatureOptions(cfg.features.jobs, cfg.cache_path, cfg.features.time_limit_s)
    start = time.perf_counter()
    refs = load_references(screen.references or cfg.candidates, cfg.data_path)
    provenance: dict = {"reference_inputs": refs.inputs, "reference_rows": len(refs.records)}
    table = predicted
    if screen.min_band_gap is not None:
        table = add_band_gaps(predicted, refs.records, options, provenance, rank)
        provenance["band_gap_s"] = round(time.perf_counter() - start, 1)
    structures = StructureLookup(cfg, refs.records)
    # reference rows that could not be read are left out (their count is in the manifest);
    # when the references are the candidate sources, the shards already listed them
    provenance["reference_failures"] = len(refs.failures)
    failures = []
    if cfg.screen.stability_top:
        start = time.perf_counter()
        calc = calc or EnergyCalculator(cache_dir=cfg.cache_path)
        phases = refs.records[pd.to_numeric(refs.records[S.E_HULL], errors="coerce").notna()]
        table = add_stability(cfg, table, phases, structures, calc, rank)
        provenance |= {
            "stability_s": round(time.perf_counter() - start, 1),
            "energies_computed": calc.computed,
            "stability_methods": _method_counts(table[S.STABILITY_METHOD]),
        }
    if cfg.screen.bvse_top:
        start = time.perf_counter()
        table, bvse_failures = add_barriers(cfg, table, structures, rank)
        failures.append(bvse_failures)
        provenance |= {
            "bvse_s": round(time.perf_counter() - start, 1),
            "bvse_top": cfg.screen.bvse_top,
        }
    return TopChecks(table, S.concat(S.empty_failures(), *failures), provenance)


def add_band_gaps(
    predicted: pd.DataFrame,
    references: pd.DataFrame,
    options: FeatureOptions,
    provenance: dict,
    rank: Ranker,
) -> pd.DataFrame:
    """``band_gap`` (the source's, else estimated for every row the other filters keep),
    ``band_gap_method`` and ``band_gap_sd`` (0 for a source value)."""
    out = predicted.copy()
    given = pd.to_numeric(out.get(S.BAND_GAP, pd.Series(np.nan, index=out.index)), errors="coerce")
    out[S.BAND_GAP] = given
    out[S.BAND_GAP_METHOD] = np.where(given.notna(), "source", "not estimated: filtered out")
    out[S.BAND_GAP_SD] = np.where(given.notna(), 0.0, np.nan)
    ranked = rank(out)
    todo = out[S.ID].isin(ranked.loc[ranked[S.RANK].notna(), S.ID]) & given.isna()
    training = gap_training_rows(references)
    systems = len(set(chemsys_groups(training[S.COMPOSITION]))) if len(training) else 0
    if len(training) < 10 or systems < N_FOLDS:
        out.loc[todo, S.BAND_GAP_METHOD] = (
            f"none: {len(training)} reference phases with a known gap in {systems} chemical "
            f"systems (the gap model needs 10 in {N_FOLDS})"
        )
        return out
    model = fit_gap_model(training, options=options)
    gaps = estimate_gaps(model, out.loc[todo], options)
    for col in (S.BAND_GAP, S.BAND_GAP_METHOD, S.BAND_GAP_SD):
        out.loc[todo, col] = gaps[col]
    provenance |= {
        "band_gap_training_rows": model.n_train,
        "band_gap_cv_mae_ev": model.cv_mae,
        "band_gap_methods": _method_counts(out[S.BAND_GAP_METHOD]),
    }
    return out


class StructureLookup:
    """Structures (JSON text) of candidates by id: from the reference table when the
    reference row comes from the same source, else from the candidate sources (loaded once,
    only when needed)."""

    def __init__(self, cfg: Config, references: pd.DataFrame) -> None:
        self.cfg = cfg
        keyed = references.dropna(subset=[S.STRUCTURE])
        self.known = {
            (str(i), str(s)): t
            for i, s, t in zip(keyed[S.ID], keyed[S.SOURCE], keyed[S.STRUCTURE], strict=True)
        }
        self.loaded: Loaded | None = None

    def records(self, rows: pd.DataFrame) -> pd.DataFrame:
        """``rows`` (id, source, composition, ...) with their ``structure`` column."""
        out = rows.copy()
        keys = zip(out[S.ID].astype(str), out[S.SOURCE].astype(str), strict=True)
        found = [self.known.get(k) for k in keys]
        if any(f is None for f in found):
            if self.loaded is None:
                self.loaded = load_candidates(self.cfg)
            loaded = self.loaded.records
            by_id = dict(zip(loaded[S.ID].astype(str), loaded[S.STRUCTURE], strict=True))
            found = [
                f if f is not None else by_id.get(str(i))
                for f, i in zip(found, out[S.ID], strict=True)
            ]
        out[S.STRUCTURE] = found
        return out


def add_stability(
    cfg: Config,
    table: pd.DataFrame,
    references: pd.DataFrame,
    structures: StructureLookup,
    calc: EnergyCalculator,
    rank: Ranker,
) -> pd.DataFrame:
    """Estimate the energy above the hull of the best ranked rows whose source gives none,
    ranking again after each round; columns ``stability_method``, ``hull_phases``,
    ``hull_warning`` for every row."""
    out = table.copy()
    given = pd.to_numeric(out.get(S.E_HULL, pd.Series(np.nan, index=out.index)), errors="coerce")
    out[S.E_HULL] = given
    out[S.STABILITY_METHOD] = np.where(given.notna(), "source", "")
    out[S.HULL_PHASES] = ""
    out[S.HULL_WARNING] = ""
    top, tried = cfg.screen.stability_top, set()
    label = f"stability of the best rows (at most {ROUNDS} rounds of {top})"
    with Progress(label, ROUNDS * top, "rows") as progress:
        for _ in range(ROUNDS):
            ranked = rank(out)
            best = ranked[ranked[S.RANK].notna()].head(top)
            todo = best[best[S.E_HULL].isna() & ~best[S.ID].astype(str).isin(tried)]
            if todo.empty:
                break
            tried |= set(todo[S.ID].astype(str))
            estimated = stability_table(structures.records(todo), references, calc)
            estimated.index = todo[S.ID].astype(str)
            rows = out[S.ID].astype(str).isin(estimated.index)
            ids = out.loc[rows, S.ID].astype(str)
            for col in (S.E_HULL, *STABILITY_COLUMNS):
                out.loc[rows, col] = estimated.loc[ids, col].to_numpy()
            progress.advance(len(todo))
    unknown = out[S.STABILITY_METHOD] == ""
    out.loc[unknown, S.STABILITY_METHOD] = f"not estimated: below the best {top}"
    return out


def add_barriers(
    cfg: Config, table: pd.DataFrame, structures: StructureLookup, rank: Ranker
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """BVSE barriers of the best ``screen.bvse_top`` ranked rows (the verify stage's columns;
    NaN elsewhere) and the rows that could not be treated (failures with the reason)."""
    ranked = rank(table)
    best = ranked[ranked[S.RANK].notna()].head(cfg.screen.bvse_top)
    records = structures.records(best[[S.ID, S.SOURCE, S.COMPOSITION]])
    barriers, failures = barrier_table(
        records, time_limit_s=cfg.features.time_limit_s, jobs=cfg.features.jobs or 1
    )
    barriers = barriers.reset_index() if S.ID not in barriers else barriers
    out = table.drop(columns=[c for c in BVSE_COLUMNS if c in table]).merge(
        barriers, on=S.ID, how="left"
    )
    not_checked = out[S.BVSE_METHOD].isna()
    reasons = dict(zip(failures[S.ID].astype(str), failures["reason"], strict=True))
    out.loc[not_checked, S.BVSE_METHOD] = [
        f"none: {reasons[i]}"
        if i in reasons
        else f"not checked: below the best {cfg.screen.bvse_top}"
        for i in out.loc[not_checked, S.ID].astype(str)
    ]
    return out, failures


def _method_counts(methods: pd.Series) -> dict[str, int]:
    """How many rows each method served (``matched:<id>`` and ``none: ...`` counted by kind)."""
    kinds = methods.astype(str).str.split(":").str[0]
    return {str(k): int(v) for k, v in kinds.value_counts().items()}
