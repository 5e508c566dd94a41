"""Which universal potential places known phases of the LGPS family's chemical systems on the
hull closest to DFT (issue 24)?

Run as ``nice -n 10 .venv/bin/python benchmarks/research/hull_potentials.py`` (one torch
thread; resumable: each relaxation is cached as soon as it ends). Writes
``results/bench/hull_potentials.json`` and prints a table.

The case ``make lgps-family`` places generated Li10MP2X12 analogues on hulls computed with a
universal potential. Choosing the potential by whether the case then passes its checks would
be tuning to the test; this study chooses it on KNOWN phases instead, by a criterion fixed
before it was run.

Phases: the mp-2018 snapshot's rows with a DFT ``e_above_hull`` and
``formation_energy_per_atom`` whose elements lie in one of the case's systems
Li-{Ge,Si,Sn}-P-{O,S,Se} (subsystems included); LGPS-family compositions are excluded
(every Li-M-P-X quaternary of those systems, Li10MP2X12 among them: the snapshot holds none
with a DFT energy, so the exclusion removes nothing that could be scored); at most
``--max-atoms`` atoms per cell, a DFT ``e_above_hull`` of at most ``--max-e-hull`` eV/atom
(stable and metastable), at most ``--per-system`` phases per chemical system (lowest DFT
``e_above_hull`` first). Each phase is relaxed with each potential exactly as the generation
stage relaxes (:func:`miscreen.generate.relax.relax_structure`: FIRE on a Frechet cell filter,
the steps, ``fmax`` and time limit of ``configs/lgps-family.yaml``) and placed on the hull of
the other selected phases of its chemical system evaluated with the same potential
(:func:`miscreen.screen.stability.chgnet_e_above_hull`, the code the case uses: an element
without an elemental phase gets an energy fitted to the DFT formation energies of the
phases holding it).

Scored: the compounds (two elements or more). An elemental phase helps build the hulls but is
not scored: its snapshot ``e_above_hull`` is measured from elemental ground states the
snapshot lacks (Se 0.18, Si 0.16 eV/atom), and its own hull would be a fitted energy.

Truth, fixed before the run: ``dft_given``, the snapshot's ``e_above_hull`` (the Materials
Project's full 2018 hull). Also reported: ``dft_same``, the DFT hull of the same selected
phases (:func:`miscreen.screen.stability.dft_e_above_hull` on the snapshot's formation
energies), which removes what the snapshot lacks and leaves the potential's own error.

Corrections: the 2018 snapshot's energies carry the Materials Project's legacy corrections
(MaterialsProjectCompatibility; MP2020 came in 2021); CHGNet and SevenNet were trained on
MPtrj, whose energies carry MP2020's. Neither system here has a +U element, so only the anion
corrections matter: a fixed energy per O (or S) atom of every oxide (sulfide), which is
linear in composition and cancels in a compound's distance to a hull of other compounds of
the same anion. It does not cancel where the decomposition holds an elemental phase of the
anion (O2, S, Se) or an unanioned phase, and the legacy scheme does not correct selenides at
all (MP2020 does), so selenide values carry that offset. chgnet-r2scan was trained on
r2SCAN energies: its hulls are compared with GGA(+U) ones here, which is what it would face
in the case.

Criterion (fixed before the run): MAE of ``e_above_hull`` against ``dft_given`` over the
scored compounds, pooled (the decision) and per anion class (oxides, sulfides, selenides,
other), with the Spearman rank correlation; the mean signed error per class and its
oxide-minus-sulfide difference; and, on known pairs with the anion swapped (SiO2/SiS2,
SnO/SnS: the lowest-DFT polymorph of each formula), the mean signed error of the potential's
oxide-minus-sulfide ``e_above_hull`` difference. A potential is recommended over CHGNet only
when its pooled MAE is lower and the paired bootstrap (phases resampled) 95 % interval of the
MAE difference excludes zero. Also the CPU seconds per phase of each potential.

Descriptive, beside the criterion: the same scores against ``dft_same``; a bootstrap that
resamples whole chemical systems (the SiO2 polymorphs are one system, not nine independent
phases); and the slope of the potential's ``e_above_hull`` on DFT's (below 1: it compresses
energies above the hull). Every potential here was trained on MPtrj, which holds these
Materials Project phases: this is a test on training data, not on new compositions.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
os.environ.setdefault("MISCREEN_MIRROR", str(REPO.parent / "shared" / "data"))
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from pymatgen.core import Composition, Structure  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from miscreen import atomic_io  # noqa: E402
from miscreen import schema as S  # noqa: E402
from miscreen.screen.energies import EnergyCalculator, fingerprint  # noqa: E402
from miscreen.screen.stability import (  # noqa: E402
    FORMATION_ENERGY,
    References,
    chgnet_e_above_hull,
    dft_e_above_hull,
)

log = logging.getLogger("hull_potentials")

OUT = REPO / "results" / "bench" / "hull_potentials.json"
CACHE = REPO / "results" / "bench" / "hull_potentials_cache"
SNAPSHOT = Path(os.environ["MISCREEN_MIRROR"]) / "mp-2018" / "mp_2018_matminer.jsonl.gz"
METALS, ANIONS = ("Ge", "Si", "Sn"), ("O", "S", "Se")
SYSTEMS = tuple(frozenset({"Li", m, "P", x}) for m in METALS for x in ANIONS)
POTENTIALS = ("chgnet", "sevennet-0", "chgnet-r2scan", "sevennet-mf-0")
INCUMBENT = "chgnet"
CLASSES = ("oxides", "sulfides", "selenides", "other")
ANION_PAIRS = (("O", "S"),)  # oxide counterpart of a sulfide: the same formula, S -> O
# configs/lgps-family.yaml: generate.relax_steps, fmax, relax_time_limit_s
RELAX_STEPS, FMAX, TIME_LIMIT_S = 150, 0.05, 120.0
MAX_ATOMS, MAX_E_HULL, PER_SYSTEM = 60, 0.2, 12
BOOTSTRAP, SEED = 2000, 0


# ------------------------------------------------------------------ phases


def in_systems(elements: frozenset[str], systems: Iterable[frozenset[str]] = SYSTEMS) -> bool:
    """Whether ``elements`` is one of ``systems`` or a subsystem of one."""
    return bool(elements) and any(elements <= s for s in systems)


def is_family(elements: frozenset[str], systems: Iterable[frozenset[str]] = SYSTEMS) -> bool:
    """An LGPS-family composition: every element of a full Li-M-P-X system (Li10MP2X12 and
    any other Li-M-P-X quaternary)."""
    return elements in set(systems)


def anion_class(elements: frozenset[str]) -> str:
    """``oxides`` / ``sulfides`` / ``selenides`` by the chalcogen a phase holds (the
    systems hold one), else ``other``."""
    for anion, name in zip(ANIONS, CLASSES, strict=False):
        if anion in elements:
            return name
    return "other"


def _elements(composition: object) -> frozenset[str]:
    try:
        return frozenset(e.symbol for e in Composition(str(composition)).elements)
    except (ValueError, KeyError, TypeError):
        return frozenset()


def select_phases(
    table: pd.DataFrame,
    systems: Iterable[frozenset[str]] = SYSTEMS,
    max_atoms: int = MAX_ATOMS,
    max_e_hull: float = MAX_E_HULL,
    per_system: int = PER_SYSTEM,
) -> tuple[pd.DataFrame, list[str]]:
    """(the study's phases, the ids excluded as LGPS-family compositions): rows of the
    ``systems`` with a DFT ``e_above_hull`` and formation energy, an ordered structure of at
    most ``max_atoms`` atoms, ``e_above_hull`` <= ``max_e_hull``; at most ``per_system`` per
    chemical system, lowest ``e_above_hull`` first (then the fewest atoms)."""
    systems = list(systems)
    elements = [_elements(c) for c in table[S.COMPOSITION]]
    inside = pd.Series([in_systems(e, systems) for e in elements], index=table.index)
    family = pd.Series([is_family(e, systems) for e in elements], index=table.index)
    excluded = table.loc[inside & family, S.ID].astype(str).tolist()
    e_hull = pd.to_numeric(table.get(S.E_HULL), errors="coerce")
    ef = pd.to_numeric(table.get(FORMATION_ENERGY), errors="coerce")
    keep = inside & ~family & e_hull.notna() & ef.notna() & (e_hull <= max_e_hull)
    rows = table[keep].copy()
    refs = References(rows)
    sizes = [
        len(s) if (s := refs.structure(i)) is not None and s.is_ordered else np.nan
        for i in range(len(refs.ids))
    ]
    rows["n_atoms"] = sizes
    rows["system"] = ["-".join(sorted(e)) for e in refs.elements]
    rows[S.E_HULL] = pd.to_numeric(rows[S.E_HULL])
    rows = rows[rows["n_atoms"] <= max_atoms]
    rows = rows.sort_values([S.E_HULL, "n_atoms"], kind="stable")
    rows = rows.groupby("system", sort=False).head(per_system)
    return rows.sort_values(["system", S.E_HULL], kind="stable").reset_index(drop=True), excluded


# ------------------------------------------------------------------ hulls


def phase_hulls(refs: References, calc: EnergyCalculator) -> pd.DataFrame:
    """Per compound of ``refs`` (two elements or more): its class, the snapshot's
    ``e_above_hull`` (``dft_given``), the DFT hull of the same phases (``dft_same``) and the
    potential's (``pot``: the phase against the others of its chemical system, all with
    ``calc``), with the hull's warning."""
    out = []
    for i, rid in enumerate(refs.ids):
        els = refs.elements[i]
        if len(els) < 2:
            continue
        structure = refs.structure(i)
        comp = Composition(refs.table.at[i, S.COMPOSITION])
        same, _ = dft_e_above_hull(comp, refs.value(i, FORMATION_ENERGY), refs, exclude=[rid])
        try:
            pot, _, warning = chgnet_e_above_hull(rid, structure, refs, calc)  # type: ignore[arg-type]
        except Exception as exc:  # one odd hull must not stop the table
            pot, warning = float("nan"), f"{type(exc).__name__}: {exc}"
        out.append(
            {
                "id": rid,
                "formula": refs.formula[i],
                "class": anion_class(els),
                "system": "-".join(sorted(els)),
                "dft_given": refs.value(i, S.E_HULL),
                "dft_same": float(same),
                "pot": float(pot),
                "warning": warning,
            }
        )
    return pd.DataFrame(out)


# ------------------------------------------------------------------ statistics


def _spearman(pred: np.ndarray, truth: np.ndarray) -> float:
    if len(pred) < 3 or np.ptp(pred) == 0 or np.ptp(truth) == 0:
        return float("nan")
    return float(spearmanr(pred, truth).statistic)


def scores(frame: pd.DataFrame, truth: str = "dft_given", pred: str = "pot") -> dict:
    """MAE, mean signed error (potential minus DFT), Spearman and n, pooled (``all``) and per
    anion class, over the rows where both are finite; plus ``oxide_minus_sulfide_mse``."""
    ok = frame[np.isfinite(frame[pred]) & np.isfinite(frame[truth])]
    out: dict = {}
    for name, part in [("all", ok), *((c, ok[ok["class"] == c]) for c in CLASSES)]:
        p, t = part[pred].to_numpy(float), part[truth].to_numpy(float)
        out[name] = {
            "n": len(part),
            "mae": float(np.mean(np.abs(p - t))) if len(part) else None,
            "mse": float(np.mean(p - t)) if len(part) else None,
            "spearman": _spearman(p, t),
        }
    ox, su = out["oxides"]["mse"], out["sulfides"]["mse"]
    out["oxide_minus_sulfide_mse"] = ox - su if ox is not None and su is not None else None
    return out


def slope(
    frame: pd.DataFrame, truth: str = "dft_same", pred: str = "pot", above: float = 0.02
) -> float:
    """Least-squares slope through the origin of the potential's ``e_above_hull`` on DFT's,
    over the phases DFT places more than ``above`` eV/atom up (below 1: the potential
    compresses energies above the hull). Descriptive, not part of the criterion."""
    ok = frame[np.isfinite(frame[pred]) & (frame[truth] > above)]
    t, p = ok[truth].to_numpy(float), ok[pred].to_numpy(float)
    return float(t @ p / (t @ t)) if len(ok) else float("nan")


def anion_pairs(frame: pd.DataFrame, truth: str = "dft_given", pred: str = "pot") -> list[dict]:
    """Known oxide/sulfide pairs (the same formula with S -> O; the lowest-DFT polymorph of
    each): the potential's and DFT's oxide-minus-sulfide ``e_above_hull`` and the error."""
    lowest = frame.sort_values(truth, kind="stable").drop_duplicates("formula")
    by_formula = {r["formula"]: r for r in lowest.to_dict("records")}
    out = []
    for formula, row in sorted(by_formula.items()):
        if row["class"] != "sulfides":
            continue
        swapped = Composition(formula).replace({"S": "O"}).reduced_formula
        if (ox := by_formula.get(swapped)) is None:
            continue
        d_pot, d_dft = ox[pred] - row[pred], ox[truth] - row[truth]
        out.append(
            {
                "pair": f"{swapped}/{formula}",
                "ids": [ox["id"], row["id"]],
                "pot": float(d_pot),
                "dft": float(d_dft),
                "error": float(d_pot - d_dft),
            }
        )
    return out


def bootstrap(
    frames: dict[str, pd.DataFrame],
    incumbent: str = INCUMBENT,
    truth: str = "dft_given",
    n: int = BOOTSTRAP,
    seed: int = SEED,
    by: str | None = None,
) -> dict:
    """Paired bootstrap over the scored phases (the same resample for every potential; rows
    scored by all): per potential the 95 % interval of the pooled MAE, how often it is the
    lowest, and the 95 % interval of its MAE minus the incumbent's. ``by`` names a column
    (``system``) whose groups are resampled whole instead of single phases (the polymorphs
    of one system are not independent)."""
    ids = set.intersection(*(set(f.loc[np.isfinite(f["pot"]), "id"]) for f in frames.values()))
    ids = sorted(
        ids & set.intersection(*(set(f.loc[np.isfinite(f[truth]), "id"]) for f in frames.values()))
    )
    if not ids:
        return {}
    errors = {
        name: np.abs(
            f.set_index("id").loc[ids, "pot"] - f.set_index("id").loc[ids, truth]
        ).to_numpy(float)
        for name, f in frames.items()
    }
    rng = np.random.default_rng(seed)
    labels = next(iter(frames.values())).set_index("id").loc[ids, by] if by else pd.Series(ids)
    groups = [np.flatnonzero(labels.to_numpy() == g) for g in pd.unique(labels)]
    weights = np.zeros((n, len(ids)))
    for r, chosen in enumerate(rng.integers(0, len(groups), size=(n, len(groups)))):
        for g in chosen:
            weights[r, groups[g]] += 1.0
    weights /= weights.sum(axis=1, keepdims=True)
    maes = {name: weights @ e for name, e in errors.items()}
    stack = np.vstack(list(maes.values()))
    best = np.argmin(stack, axis=0)
    out: dict = {"n_phases": len(ids), "n_groups": len(groups), "resamples": n}
    for k, (name, m) in enumerate(maes.items()):
        entry = {
            "mae": float(errors[name].mean()),
            "mae_95": [float(x) for x in np.percentile(m, [2.5, 97.5])],
            "share_lowest": float(np.mean(best == k)),
        }
        if incumbent in maes and name != incumbent:
            diff = m - maes[incumbent]
            entry["minus_incumbent_95"] = [float(x) for x in np.percentile(diff, [2.5, 97.5])]
        out[name] = entry
    return out


def recommend(boot: dict, incumbent: str = INCUMBENT) -> tuple[str, str]:
    """(potential, why) by the fixed criterion: the incumbent unless another has a lower
    pooled MAE with the 95 % interval of the difference below zero."""
    if not boot or incumbent not in boot:
        return incumbent, "no comparison possible"
    better = [
        (v["mae"], name)
        for name, v in boot.items()
        if isinstance(v, dict)
        and name != incumbent
        and v.get("minus_incumbent_95")
        and v["minus_incumbent_95"][1] < 0
    ]
    if better:
        mae, name = min(better)
        return (
            name,
            f"pooled MAE {mae:.3f} < {incumbent} {boot[incumbent]['mae']:.3f}, interval below 0",
        )
    lowest = min((v["mae"], k) for k, v in boot.items() if isinstance(v, dict) and "mae" in v)
    note = "lowest MAE" if lowest[1] == incumbent else f"{lowest[1]} lowest, within noise"
    return incumbent, f"{incumbent} stays ({note}: no difference outside the bootstrap interval)"


# ------------------------------------------------------------------ relaxations


def cached_calculator(
    potential: str, cache_file: Path, clock: Callable[[], float] = time.process_time
) -> tuple[EnergyCalculator, dict[str, dict]]:
    """An energy calculator that relaxes as the generation stage does, with ``potential``,
    and records each relaxation (energy, steps, how it stopped, wall and CPU seconds) by
    the fingerprint of its input in ``cache_file`` as soon as it ends; results already
    there are reused (same setting only)."""
    from miscreen.generate.relax import RelaxSettings, relaxer

    settings = RelaxSettings(potential, FMAX, RELAX_STEPS, TIME_LIMIT_S)
    doc = atomic_io.read_json(cache_file) if cache_file.is_file() else {}
    records: dict[str, dict] = doc.get("phases", {}) if doc.get("setting") == settings.key else {}
    state: dict = {}

    def energies(structures: list[Structure]) -> list[float]:
        run = state.get("run") or state.setdefault("run", relaxer(settings))
        out = []
        for s in structures:
            start = clock()
            r = run(s)
            records[fingerprint(s)] = {
                "formula": s.composition.reduced_formula,
                "atoms": len(s),
                "energy_ev_per_atom": r.energy_ev_per_atom,
                "steps": r.steps,
                "stopped": r.stopped,
                "max_force_ev_a": r.max_force_ev_a,
                "wall_s": r.seconds,
                "cpu_s": round(clock() - start, 3),
            }
            atomic_io.write_json(cache_file, {"setting": settings.key, "phases": records})
            log.info(
                "%s %s (%d atoms): %d steps, %s, %.0f s cpu",
                potential,
                s.composition.reduced_formula,
                len(s),
                r.steps,
                r.stopped,
                records[fingerprint(s)]["cpu_s"],
            )
            out.append(r.energy_ev_per_atom)
        return out

    calc = EnergyCalculator(energies, setting=settings.key, cache_dir=None)
    calc.memory.update({fp: rec["energy_ev_per_atom"] for fp, rec in records.items()})
    return calc, records


def run_potential(name: str, refs: References, deadline: float) -> dict | None:
    """Relax every phase with ``name`` (cached), then its hulls and scores; None when the
    deadline passed first (rerun to resume)."""
    calc, records = cached_calculator(name, CACHE / f"{name}.json")
    for i, rid in enumerate(refs.ids):
        if time.time() > deadline:
            log.warning("%s: stopped at the time budget (%d/%d phases)", name, i, len(refs.ids))
            return None
        calc.energies({rid: refs.structure(i)})  # type: ignore[dict-item]
    frame = phase_hulls(refs, calc)
    fps = {fingerprint(refs.structure(i)) for i in range(len(refs.ids))}  # type: ignore[arg-type]
    mine = [records[fp] for fp in fps if fp in records]
    cost = {
        "cpu_s_per_phase": float(np.mean([r["cpu_s"] for r in mine])),
        "wall_s_per_phase": float(np.mean([r["wall_s"] for r in mine])),
        "cpu_s_total": float(np.sum([r["cpu_s"] for r in mine])),
        "stopped": pd.Series([r["stopped"] for r in mine]).value_counts().to_dict(),
    }
    return {
        "frame": frame,
        "scores": scores(frame, "dft_given"),
        "scores_dft_same": scores(frame, "dft_same"),
        "anion_pairs": anion_pairs(frame, "dft_given"),
        "anion_pairs_dft_same": anion_pairs(frame, "dft_same"),
        "slope_vs_dft_same": slope(frame, "dft_same"),
        "cost": cost,
    }


def table_text(results: dict[str, dict]) -> str:
    """The printed table: per potential, MAE (n) against the snapshot pooled and per class,
    Spearman, the oxide-minus-sulfide mean signed error, then against the DFT hull of the
    same phases the pooled MAE, the oxide-minus-sulfide error and the slope, and the cost."""
    head = f"{'potential':<14}" + "".join(f"{c:>12}" for c in ("all", *CLASSES))
    head += f"{'rho':>6}{'ox-su':>8}{'| same':>8}{'ox-su':>8}{'slope':>7}{'cpu s':>7}"
    lines = [head]
    for name, res in results.items():
        sc, same = res["scores"], res["scores_dft_same"]
        cells = [_cell(sc[c]) for c in ("all", *CLASSES)]
        lines.append(
            f"{name:<14}"
            + "".join(f"{c:>12}" for c in cells)
            + f"{sc['all']['spearman']:>6.2f}{_num(sc['oxide_minus_sulfide_mse']):>8.3f}"
            + f"{same['all']['mae']:>8.3f}{_num(same['oxide_minus_sulfide_mse']):>8.3f}"
            + f"{res['slope_vs_dft_same']:>7.2f}{res['cost']['cpu_s_per_phase']:>7.1f}"
        )
    return "\n".join(lines)


def _cell(score: dict) -> str:
    return f"{score['mae']:.3f} ({score['n']})" if score["n"] else "-"


def _num(value: float | None) -> float:
    return float("nan") if value is None else value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--potentials", nargs="+", default=list(POTENTIALS))
    parser.add_argument("--max-minutes", type=float, default=75.0, help="then stop (resumable)")
    parser.add_argument("--max-atoms", type=int, default=MAX_ATOMS)
    parser.add_argument("--max-e-hull", type=float, default=MAX_E_HULL)
    parser.add_argument("--per-system", type=int, default=PER_SYSTEM)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for noisy in ("miscreen", "pymatgen"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    from miscreen.fetch.reference_rows import reference_rows
    from miscreen.potentials import set_threads

    set_threads(1)
    started, cpu0 = time.time(), time.process_time()
    deadline = started + 60 * args.max_minutes
    table = reference_rows(SNAPSHOT, "mp-2018")
    phases, excluded = select_phases(
        table, SYSTEMS, args.max_atoms, args.max_e_hull, args.per_system
    )
    refs = References(phases)
    log.info(
        "%d phases (%d compounds scored); excluded as LGPS family: %s",
        len(refs.ids),
        sum(len(e) > 1 for e in refs.elements),
        excluded or "none",
    )
    results: dict[str, dict] = {}
    for name in args.potentials:
        res = run_potential(name, refs, deadline)
        if res is not None:
            results[name] = res
    frames = {name: r["frame"] for name, r in results.items()}
    boot = bootstrap(frames, truth="dft_given")
    boot_same = bootstrap(frames, truth="dft_same")
    boot_systems = bootstrap(frames, truth="dft_given", by="system")
    choice, why = recommend(boot)
    per_phase = None
    if frames:
        first = next(iter(frames.values()))
        per_phase = first[["id", "formula", "class", "dft_given", "dft_same"]].copy()
        for name, f in frames.items():
            per_phase[name] = f["pot"].to_numpy()
            per_phase[f"{name}_warning"] = f["warning"].to_numpy()
    doc = {
        "question": "which potential reproduces DFT e_above_hull best on known phases of "
        "Li-{Ge,Si,Sn}-P-{O,S,Se} (issue 24)",
        "settings": {
            "relax_steps": RELAX_STEPS,
            "fmax": FMAX,
            "time_limit_s": TIME_LIMIT_S,
            "max_atoms": args.max_atoms,
            "max_e_hull": args.max_e_hull,
            "per_system": args.per_system,
            "threads": 1,
        },
        "phases": [
            {
                "id": rid,
                "formula": refs.formula[i],
                "atoms": int(phases.at[i, "n_atoms"]),
                "dft_e_above_hull": refs.value(i, S.E_HULL),
            }
            for i, rid in enumerate(refs.ids)
        ],
        "excluded_lgps_family": excluded,
        "potentials": {
            name: {k: v for k, v in r.items() if k != "frame"} for name, r in results.items()
        },
        "per_phase": per_phase.to_dict("records") if per_phase is not None else [],
        "bootstrap_vs_dft_given": boot,
        "bootstrap_vs_dft_same": boot_same,
        "bootstrap_vs_dft_given_by_system": boot_systems,
        "recommendation": {"potential": choice, "why": why},
        "complete": len(results) == len(args.potentials),
        "wall_s": round(time.time() - started, 1),
        "cpu_s": round(time.process_time() - cpu0, 1),
    }
    atomic_io.write_json(OUT, doc)
    print(table_text(results))
    if per_phase is not None:
        print(per_phase[[c for c in per_phase if not c.endswith("_warning")]].round(3).to_string())
    for label, boot_doc in (("phases", boot), ("systems", boot_systems)):
        print(
            f"bootstrap over {label} (MAE minus {INCUMBENT}'s, 95 %): "
            + ", ".join(
                f"{k} {v['minus_incumbent_95'][0]:+.4f}..{v['minus_incumbent_95'][1]:+.4f}"
                for k, v in boot_doc.items()
                if isinstance(v, dict) and "minus_incumbent_95" in v
            )
        )
    print(f"recommendation: {choice} ({why})")
    return 0 if doc["complete"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
