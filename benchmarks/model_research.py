"""Model choices for new chemistry: features, censored labels and estimators (issue 13).

Run as ``.venv/bin/python benchmarks/model_research.py`` (the ``quick`` study: 2 seeds,
100 trees per forest instead of the config's 500, about 15 minutes on one free core).
``--study full --seeds 5`` reruns every comparison of the report (about 2-3 hours on one
core; ``--pred-cache DIR`` keeps out-of-fold predictions so a rerun only computes what is
new). ``--variant kind:groups:estimator:policy`` runs single configurations.
Only the OBELiX *training* split is read; the test split is never opened. Writes
``results/bench/model_research.json`` and prints one table per input kind.

Cross-validation schemes that look like screening (extrapolation to new chemistry), each
a partition of the 478 training rows into test folds, every row predicted once:

- ``doi``: GroupKFold(5) by publication (``miscreen.train.fit.doi_groups``), shuffled by seed;
- ``cluster``: leave-cluster-out, k-means (k=5, seeded) on standardised element fractions
  (Meredig et al. 2018; Hargreaves et al. 2023) -- each cluster is one test fold;
- ``chemsys``: GroupKFold(5) by chemical system (the sorted element set), shuffled by seed.

The folds are the package's (``miscreen.train.splits.new_chemistry_folds``, shuffled).

The criterion is the mean over the three schemes of the out-of-fold MAE in log10(S/cm).
Censored rows (``<1E-10``...) are scored at -15 as upstream does ("MAE"), and also by a
bound-aware MAE that counts a censored row as exact when the prediction is at or below its
stated bound ("bMAE"). Spearman is against the upstream labels.

Input kinds, named like the pipeline's models (``miscreen.train.routing``): ``composition``
(the composition alone, preset "composition"), ``cell`` (composition + cell, preset "cell"),
``structure`` (preset "full", the default config's; trained on every training row like the
pipeline's structure model, scored on the rows with CIFs). Before issue 21 these kinds were
called ``formula``, ``composition`` and ``full``; results written then carry the old names.
Candidate feature groups not registered in a preset are computed here by calling the
featurizers on entries (the composition-only groups never look at a structure, so a CIF row
and the same formula typed by a user get the same values); the ones that were not adopted
live in ``benchmarks/research/``.

Noise: every variant is compared, on the same folds and seeds, with its reference: the same
estimator and policy without the added groups, else the project default (ensemble, censored
rows at -15). The table gives the change of the criterion (mean over seeds) and its noise:
the larger of the bootstrap standard error over publications (DOIs) of the paired per-row
change and the seed standard deviation / sqrt(seeds). A change counts ("better"/"worse") only
beyond twice the noise and with the same sign on every seed; anything else is "noise".
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault(
    "MISCREEN_MIRROR", str(Path(__file__).resolve().parents[2] / "shared" / "data")
)
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for benchmarks.research

import numpy as np
import pandas as pd
from pymatgen.core import Composition
from scipy.stats import spearmanr
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from threadpoolctl import threadpool_limits

from benchmarks.research.anion_framework import AnionFrameworkFeaturizer
from benchmarks.research.embeddings import (
    ChgnetEmbeddingFeaturizer,
    Mat2VecEmbeddingFeaturizer,
    MegnetEmbeddingFeaturizer,
)
from miscreen import schema as S
from miscreen.benchmark import reference_model
from miscreen.featurize import FeatureOptions, featurize_records
from miscreen.featurize.base import Entry, Featurizer
from miscreen.featurize.ionic import IonicFeaturizer
from miscreen.featurize.oxi_composition import OxidationCompositionFeaturizer
from miscreen.fetch.labels import OBELIX_FLOOR_LOG10
from miscreen.fetch.obelix import load_obelix
from miscreen.train.estimators import MISSING, make_regressor
from miscreen.train.fit import doi_groups
from miscreen.train.splits import N_CLUSTERS, Folds, chemsys_groups, new_chemistry_folds

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "bench" / "model_research.json"
SCHEMES = ("doi", "cluster", "chemsys")
N_FOLDS = 5
N_BOOT = 300
# the default config's hyperparameters (configs/default.yaml, chosen by DOI-grouped search)
ENSEMBLE_PARAMS = {"model__et__max_features": 0.5}
CANDIDATES: dict[str, type[Featurizer]] = {
    "megnet": MegnetEmbeddingFeaturizer,
    "mat2vec": Mat2VecEmbeddingFeaturizer,
    "chgnet_el": ChgnetEmbeddingFeaturizer,
    "oxi": OxidationCompositionFeaturizer,
    "ion": IonicFeaturizer,
    "anion": AnionFrameworkFeaturizer,
}
# the input kinds, named like the pipeline's models, and their presets
KIND_PRESETS = {"composition": "composition", "cell": "cell", "structure": "full"}
KINDS = tuple(KIND_PRESETS)
ADOPTED = ("oxi:",)  # registered in the presets after this study chose them


# ---------------------------------------------------------------------------- data


@dataclass
class Data:
    """Training rows, upstream labels and every feature table, aligned by id."""

    records: pd.DataFrame  # indexed by id
    y: np.ndarray  # upstream labels: censored rows at -15
    censored: np.ndarray
    bound: np.ndarray  # log10 bound of censored rows, NaN elsewhere
    doi: np.ndarray
    chemsys: np.ndarray
    has_cif: np.ndarray
    base: dict[str, pd.DataFrame] = field(default_factory=dict)  # kind -> preset table
    extra: dict[tuple[str, bool], pd.DataFrame] = field(default_factory=dict)


def load(cache_dir: Path) -> Data:
    records, failures = load_obelix("train")
    if len(failures):
        print(f"{len(failures)} OBELiX training rows failed to load (left out)")
    records = records.set_index(S.ID, drop=False)
    opts = FeatureOptions(jobs=1, cache_dir=cache_dir)
    base: dict[str, pd.DataFrame] = {}
    for kind, preset in KIND_PRESETS.items():
        table, fails, _ = featurize_records(records.reset_index(drop=True), preset, opts)
        if len(fails):
            print(f"{preset}: {len(fails)} featurization failures (rows left out)")
        # the study's baselines are the presets as they were: groups it adopted since
        # (``oxi``) come back only as the "+group" variants
        base[kind] = table.loc[:, ~table.columns.str.startswith(ADOPTED)]
    ids = base["composition"].index
    for table in base.values():
        ids = ids.intersection(table.index)
    records = records.loc[ids]
    base = {k: t.loc[ids] for k, t in base.items()}
    return Data(
        records=records,
        y=records[S.TARGET].to_numpy(float),
        censored=records[S.CENSORED].astype(bool).to_numpy(),
        bound=records["censor_bound"].to_numpy(float),
        doi=doi_groups(records),
        chemsys=chemsys_groups(records[S.COMPOSITION]),
        has_cif=S.has_structure(records).to_numpy(),
        base=base,
    )


def extra_table(data: Data, group: str, with_structure: bool) -> pd.DataFrame:
    """A candidate group's features for every row (NaN where it needs a missing structure)."""
    key = (group, with_structure)
    if key in data.extra:
        return data.extra[key]
    f = CANDIDATES[group]()
    labels = f.feature_labels()
    rows, failed = [], 0
    for rid, r in data.records.iterrows():
        structure = r[S.STRUCTURE] if with_structure and isinstance(r[S.STRUCTURE], str) else None
        if f.needs_structure and structure is None:
            rows.append([math.nan] * len(labels))
            continue
        entry = Entry(Composition(r[S.COMPOSITION]), structure)
        try:
            rows.append(f.featurize(entry))
        except Exception as exc:  # a failure is a NaN row, counted and reported
            failed += 1
            print(f"  {group}: {rid}: {type(exc).__name__}: {exc}")
            rows.append([math.nan] * len(labels))
    if failed:
        print(f"  {group}: {failed} rows failed")
    table = pd.DataFrame(rows, index=data.records.index, columns=labels, dtype=float)
    data.extra[key] = table
    return table


def features(data: Data, kind: str, groups: tuple[str, ...]) -> pd.DataFrame:
    with_structure = kind == "structure"
    parts = [data.base[kind]] + [extra_table(data, g, with_structure) for g in groups]
    return pd.concat(parts, axis=1)


# --------------------------------------------------------------------------- folds


def splits(data: Data, seed: int) -> dict[str, Folds]:
    """The three new-chemistry CV schemes for one seed (the package's, shuffled by seed)."""
    return new_chemistry_folds(data.records, seed, N_FOLDS, shuffle=True)


# ---------------------------------------------------------------------- estimators


def estimator(name: str, trees: int, seed: int, names: list[str]) -> Pipeline:
    """``ensemble`` (the project default before this study: median extra trees, gradient
    boosting and composition neighbours), ``ensemble_noknn`` (without the neighbours: the
    default since), ``ensemble_l1`` (the same with gradient boosting on absolute error),
    ``extra_trees`` (median extra trees alone)."""
    if name == "ensemble":
        return reference_model(trees, seed, names)
    if name == "ensemble_noknn":
        return make_regressor("ensemble", trees, seed).set_params(**ENSEMBLE_PARAMS)
    if name == "ensemble_l1":  # gradient boosting on absolute error (a median, like the trees)
        model = make_regressor("ensemble", trees, seed).set_params(**ENSEMBLE_PARAMS)
        return model.set_params(model__hgb__loss="absolute_error")
    if name == "extra_trees":
        return make_regressor("extra_trees", trees, seed)
    raise ValueError(f"unknown estimator {name!r}")


def classifier(trees: int, seed: int) -> Pipeline:
    """P(censored): balanced extra trees behind the same constant imputation."""
    return make_pipeline(
        SimpleImputer(strategy="constant", fill_value=MISSING, keep_empty_features=True),
        ExtraTreesClassifier(
            trees, max_features=0.5, min_samples_leaf=2, class_weight="balanced_subsample",
            random_state=seed, n_jobs=1,
        ),
    )  # fmt: skip


# ----------------------------------------------------------------------- variants

POLICIES = ("floor", "bound", "drop", "two_part", "two_part_mean")
DEFAULT_ESTIMATOR, DEFAULT_POLICY = "ensemble", "floor"  # the defaults before this study


@dataclass(frozen=True)
class Variant:
    """One configuration: input kind, added feature groups, estimator, censored policy."""

    kind: str
    groups: tuple[str, ...] = ()
    estimator: str = DEFAULT_ESTIMATOR
    policy: str = DEFAULT_POLICY

    @property
    def label(self) -> str:
        parts = [f"+{'+'.join(self.groups)}"] if self.groups else []
        if self.estimator != DEFAULT_ESTIMATOR:
            parts.append(self.estimator)
        if self.policy != DEFAULT_POLICY:
            parts.append(f"censored {self.policy.replace('_', '-')}")
        return ", ".join(parts) or "baseline (ensemble, floor)"

    @property
    def key(self) -> str:
        return f"{self.kind}_{'+'.join(self.groups) or 'base'}_{self.estimator}_{self.policy}"

    def reference(self) -> Variant:
        """What a change is measured against: the same estimator and policy without the
        added groups; for a change of estimator or policy, the project default."""
        if self.groups:
            return Variant(self.kind, (), self.estimator, self.policy)
        return Variant(self.kind)


def references(v: Variant) -> list[Variant]:
    """The chain of references below ``v``, the project default first."""
    chain = [v]
    while chain[-1].reference() != chain[-1]:
        chain.append(chain[-1].reference())
    return chain[:0:-1]


def run_variant(
    data: Data, v: Variant, seed: int, folds: dict, trees: int
) -> dict[str, dict[str, np.ndarray]]:
    """Out-of-fold predictions per scheme and policy. A two-part run also yields ``drop``
    (its regressor alone, fitted on the measured rows) and ``two_part_mean``."""
    X = features(data, v.kind, v.groups)
    names = list(X.columns)
    Xv = X.to_numpy(float)
    measured = ~data.censored
    y_train = data.y.copy()
    if v.policy == "bound":
        y_train[data.censored] = data.bound[data.censored]
    two_part = v.policy.startswith("two_part")
    out: dict[str, dict[str, np.ndarray]] = {}
    for scheme, fold_list in folds.items():
        pred = np.full(len(data.y), np.nan)
        prob = np.zeros(len(data.y))
        for tr, te in fold_list:
            fit_rows = tr[measured[tr]] if v.policy == "drop" or two_part else tr
            model = estimator(v.estimator, trees, seed, names)
            with threadpool_limits(1):
                model.fit(Xv[fit_rows], y_train[fit_rows])
                pred[te] = model.predict(Xv[te])
                if two_part and data.censored[tr].any():
                    clf = classifier(trees, seed).fit(Xv[tr], data.censored[tr])
                    prob[te] = clf.predict_proba(Xv[te])[:, 1]
        if two_part:
            # P(censored) >= 0.5: predict the upstream floor, else the measured-row regressor
            out[scheme] = {
                "drop": pred,
                "two_part": np.where(prob >= 0.5, OBELIX_FLOOR_LOG10, pred),
                "two_part_mean": prob * OBELIX_FLOOR_LOG10 + (1 - prob) * pred,
            }
        else:
            out[scheme] = {v.policy: pred}
    return out


def cached_run(
    data: Data, v: Variant, seed: int, folds: dict, trees: int, cache: Path | None
) -> dict[str, dict[str, np.ndarray]]:
    """:func:`run_variant`, its predictions kept in ``cache`` (a folder) when one is given,
    so that a rerun with more seeds or variants computes only what is new."""
    if cache is None:
        return run_variant(data, v, seed, folds, trees)
    # the preset in the name: a file from before the kinds were renamed is never read
    path = cache / f"{v.key}_{KIND_PRESETS[v.kind]}_s{seed}_t{trees}.npz"
    if path.exists():
        out: dict[str, dict[str, np.ndarray]] = {}
        with np.load(path) as flat:
            for name in flat.files:
                scheme, policy = name.split("__")
                out.setdefault(scheme, {})[policy] = flat[name]
        return out
    out = run_variant(data, v, seed, folds, trees)
    cache.mkdir(parents=True, exist_ok=True)
    flat = {f"{sc}__{po}": arr for sc, by in out.items() for po, arr in by.items()}
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, **flat)
    tmp.replace(path)
    return out


# ------------------------------------------------------------------------- metrics


def row_errors(data: Data, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row absolute error (censored rows at -15) and bound-aware error (a censored row
    is exact at or below its bound)."""
    err = np.abs(pred - data.y)
    berr = err.copy()
    c = data.censored
    berr[c] = np.maximum(pred[c] - data.bound[c], 0.0)
    return err, berr


def judge(per_seed: list[float], ses: list[float]) -> tuple[float, float, float, int, str]:
    """The study's rule for a paired change (negative: better) -> (mean change, seed sd,
    noise, seeds lower, verdict). Noise is the larger of the mean DOI-bootstrap standard
    error and the seed sd / sqrt(seeds); "better" or "worse" needs a change beyond twice the
    noise with the same sign on every seed, else "noise"."""
    delta = float(np.mean(per_seed))
    sd = float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else math.nan
    noise = max(float(np.mean(ses)), (sd / math.sqrt(len(per_seed))) if sd == sd else 0.0)
    lower = sum(x < 0 for x in per_seed)
    verdict = "noise"
    if delta < -2 * noise and lower == len(per_seed):
        verdict = "better"
    elif delta > 2 * noise and lower == 0:
        verdict = "worse"
    return delta, sd, noise, lower, verdict


def boot_se(diff: np.ndarray, groups: np.ndarray, rng: np.random.Generator) -> float:
    """Bootstrap SE (resampling publications) of the mean paired per-row difference."""
    _, inv = np.unique(groups, return_inverse=True)
    sums = np.bincount(inv, weights=diff)
    counts = np.bincount(inv)
    draws = rng.integers(0, len(sums), size=(N_BOOT, len(sums)))
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    return float(means.std())


# --------------------------------------------------------------------------- study

Preds = dict[tuple[str, int], dict[str, np.ndarray]]  # (variant key, seed) -> scheme -> pred


def study(name: str) -> list[Variant]:
    """``quick`` (the default: the decisions of the report, ~15 min on one core with 2
    seeds) or ``full`` (every comparison the report is based on: about 2 hours on one core
    with ``--seeds 5``, the first 3 seeds for the non-key rows)."""
    noknn = "ensemble_noknn"
    vs: list[Variant] = []
    if name == "quick":
        vs += [
            Variant("composition", policy="bound"),
            Variant("composition", policy="two_part"),  # also gives drop and two-part-mean
            Variant("composition", estimator=noknn),
            Variant("composition", estimator="extra_trees"),
            Variant("composition", estimator=noknn, policy="bound"),
            Variant("composition", ("oxi",), noknn, "bound"),
            Variant("composition", ("megnet",), noknn, "bound"),
            Variant("cell", estimator=noknn, policy="bound"),
            Variant("cell", ("oxi",), noknn, "bound"),
            Variant("structure", policy="bound"),
            Variant("structure", policy="two_part"),
            Variant("structure", estimator=noknn, policy="bound"),
            Variant("structure", ("anion",), noknn, "bound"),
        ]
        return vs
    for kind in KINDS:
        vs += [Variant(kind, policy="bound"), Variant(kind, policy="two_part")]
        for est in (noknn, "extra_trees"):
            vs += [Variant(kind, (), est, pol) for pol in ("floor", "bound", "drop")]
        vs.append(Variant(kind, ("oxi",), noknn, "bound"))
    embeddings = ("megnet", "mat2vec", "chgnet_el")
    for kind in ("composition", "cell"):
        vs += [Variant(kind, (g,), noknn, "drop") for g in ("oxi", "ion", *embeddings)]
    vs += [Variant("structure", (g,), noknn) for g in ("anion", "oxi")]
    return vs


def evaluate(
    data: Data, variants: list[Variant], seeds: list[int], trees: int, cache: Path | None
) -> list[dict]:
    """Run every variant (and the references it is compared with, and theirs) on every seed."""
    todo = list(dict.fromkeys([r for v in variants for r in (*references(v), v)]))
    folds = {s: splits(data, s) for s in seeds}
    for s in seeds:
        sizes = [len(te) for _, te in folds[s]["cluster"]]
        print(f"seed {s}: leave-cluster-out fold sizes {sizes}")
    preds: Preds = {}
    t0 = time.perf_counter()
    for i, v in enumerate(todo):
        if all((v.key, s) in preds for s in seeds):
            continue  # produced by a two-part run
        t = time.perf_counter()
        for s in seeds:
            for scheme, by_policy in cached_run(data, v, s, folds[s], trees, cache).items():
                for policy, p in by_policy.items():
                    key = Variant(v.kind, v.groups, v.estimator, policy).key
                    preds.setdefault((key, s), {})[scheme] = p
        print(f"[{i + 1}/{len(todo)}] {v.kind:12s} {v.label:44s} "
              f"{time.perf_counter() - t:6.1f} s (total {time.perf_counter() - t0:5.0f} s)",
              flush=True)  # fmt: skip
    shown = list(dict.fromkeys(todo + [
        Variant(v.kind, v.groups, v.estimator, p)
        for v in todo if v.policy == "two_part" for p in ("drop", "two_part_mean")
    ]))  # fmt: skip
    return [summarise(data, v, preds, seeds) for v in shown]


def summarise(data: Data, v: Variant, preds: Preds, seeds: list[int]) -> dict:
    """Scores of one variant per scheme (mean over seeds), the criterion, and the paired
    change against its reference with its noise."""
    rng = np.random.default_rng(0)
    rows = data.has_cif if v.kind == "structure" else np.ones(len(data.y), bool)
    out: dict = {"kind": v.kind, "variant": v.label, "groups": list(v.groups),
                 "estimator": v.estimator, "policy": v.policy, "rows": int(rows.sum())}  # fmt: skip
    crit: dict[str, list[float]] = {"mae": [], "bmae": [], "spearman": []}
    for scheme in SCHEMES:
        vals: dict[str, list[float]] = {"mae": [], "bmae": [], "spearman": []}
        for s in seeds:
            p = preds[(v.key, s)][scheme]
            err, berr = row_errors(data, p)
            vals["mae"].append(float(err[rows].mean()))
            vals["bmae"].append(float(berr[rows].mean()))
            vals["spearman"].append(float(spearmanr(p[rows], data.y[rows]).statistic))
        for m, xs in vals.items():
            out[f"{scheme}_{m}"] = float(np.mean(xs))
            crit[m].append(xs)
    for m, per_scheme in crit.items():
        per_seed = np.mean(per_scheme, axis=0)  # mean over schemes, per seed
        out[m] = float(per_seed.mean())
        out[f"{m}_per_seed"] = [float(x) for x in per_seed]
    ref = v.reference()
    if ref == v:
        return out
    out["reference"] = ref.label
    for m, which in (("mae", 0), ("bmae", 1)):
        per_seed, ses = [], []
        per_scheme: dict[str, list[float]] = {sc: [] for sc in SCHEMES}
        for s in seeds:
            diffs = []
            for scheme in SCHEMES:
                e_v = row_errors(data, preds[(v.key, s)][scheme])[which][rows]
                e_r = row_errors(data, preds[(ref.key, s)][scheme])[which][rows]
                diffs.append(e_v - e_r)
                per_scheme[scheme].append(float((e_v - e_r).mean()))
            d = np.mean(diffs, axis=0)  # per-row change of the criterion
            per_seed.append(float(d.mean()))
            ses.append(boot_se(d, data.doi[rows], rng))
        delta, sd, noise, _, verdict = judge(per_seed, ses)
        out[f"delta_{m}"] = delta
        out[f"delta_{m}_per_seed"] = per_seed
        out[f"delta_{m}_per_scheme"] = {sc: float(np.mean(x)) for sc, x in per_scheme.items()}
        out[f"delta_{m}_seed_sd"] = sd
        out[f"delta_{m}_boot_se"] = float(np.mean(ses))
        out[f"delta_{m}_noise"] = noise
        out[f"delta_{m}_verdict"] = verdict
    return out


def print_table(results: list[dict]) -> None:
    for kind in KINDS:
        rows = [r for r in results if r["kind"] == kind]
        if not rows:
            continue
        print(f"\n== {kind}: {rows[0]['rows']} scored rows. MAE in log10(S/cm): mean of the "
              "doi / cluster / chemsys CV MAEs; dMAE = paired change vs the reference "
              "(same settings without the added groups, else the baseline), 'noise' = "
              "max(DOI-bootstrap se, seed sd / sqrt(seeds)); bMAE = bound-aware")  # fmt: skip
        print(f"{'variant':44s} {'MAE':>6s} {'doi':>6s} {'clus':>6s} {'chem':>6s} {'rho':>5s} "
              f"{'bMAE':>6s} {'dMAE':>7s} {'noise':>5s} {'verdict':7s} {'dbMAE':>7s} "
              f"{'verdict':7s}")  # fmt: skip
        for r in rows:
            tail = ""
            if "delta_mae" in r:
                tail = (f"{r['delta_mae']:+7.3f} {r['delta_mae_noise']:5.3f} "
                        f"{r['delta_mae_verdict']:7s} {r['delta_bmae']:+7.3f} "
                        f"{r['delta_bmae_verdict']:7s}")  # fmt: skip
            print(f"{r['variant'][:44]:44s} {r['mae']:6.3f} {r['doi_mae']:6.3f} "
                  f"{r['cluster_mae']:6.3f} {r['chemsys_mae']:6.3f} {r['spearman']:5.2f} "
                  f"{r['bmae']:6.3f} {tail}")  # fmt: skip


def parse_variant(text: str) -> Variant:
    """``kind:group+group:estimator:policy`` (empty parts take the defaults)."""
    kind, groups, est, policy = [*text.split(":"), "", "", ""][:4]
    if kind not in KIND_PRESETS:
        raise ValueError(f"unknown input kind {kind!r}; choose one of {sorted(KIND_PRESETS)}")
    gs = tuple(g for g in groups.split("+") if g)
    unknown = [g for g in gs if g not in CANDIDATES]
    if unknown:
        raise ValueError(f"unknown feature groups {unknown}; choose from {sorted(CANDIDATES)}")
    if policy and policy not in POLICIES:
        raise ValueError(f"unknown censored policy {policy!r}; choose one of {POLICIES}")
    return Variant(kind, gs, est or DEFAULT_ESTIMATOR, policy or DEFAULT_POLICY)


def study_arguments(doc: str, seeds: int, out: Path) -> argparse.ArgumentParser:
    """The options every training-split study shares: ``--seeds``, ``--trees``,
    ``--cache-dir`` (features, shared between studies) and ``--out``."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=seeds)
    ap.add_argument("--trees", type=int, default=100)
    ap.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("MISCREEN_CACHE_DIR", "/tmp/miscreen-research-cache")),
    )
    ap.add_argument("--out", type=Path, default=out)
    return ap


TRAIN_ONLY = "OBELiX train split (Therrien et al. 2025, CC BY 4.0); the test split is not read"


def write_study(doc: str, result: dict, out: Path, t0: float) -> dict:
    """``result`` under the study's question (the first line of ``doc``) and data, with its
    run time, written to ``out`` as JSON."""
    result = {"question": doc.splitlines()[0], "data": TRAIN_ONLY, **result}
    result["seconds"] = time.perf_counter() - t0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{result['seconds']:.0f} s; wrote {out}")
    return result


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--trees", type=int, default=100)
    ap.add_argument("--study", choices=("quick", "full"), default="quick")
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        help="kind:group+group:estimator:policy (repeatable; replaces the study)",
    )
    ap.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("MISCREEN_CACHE_DIR", "/tmp/miscreen-research-cache")),
    )
    ap.add_argument("--pred-cache", type=Path, default=None,
                    help="folder keeping out-of-fold predictions between runs")  # fmt: skip
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    os.environ.setdefault("MISCREEN_DATA_DIR", str(args.cache_dir / "data"))
    t0 = time.perf_counter()
    data = load(args.cache_dir)
    print(f"{len(data.y)} training rows ({int(data.has_cif.sum())} with CIFs, "
          f"{int(data.censored.sum())} censored), {len(set(data.doi))} DOIs, "
          f"{len(set(data.chemsys))} chemical systems; {args.trees} trees, "
          f"{args.seeds} seeds")  # fmt: skip
    variants = [parse_variant(v) for v in args.variant] or study(args.study)
    seeds = list(range(args.seeds))
    results = evaluate(data, variants, seeds, args.trees, args.pred_cache)
    print_table(results)
    out = {
        "question": "issue 13: model choices by new-chemistry CV on the OBELiX training split",
        "data": TRAIN_ONLY,
        "schemes": {
            "doi": f"GroupKFold({N_FOLDS}) by DOI, shuffled by seed",
            "cluster": f"leave-cluster-out, KMeans({N_CLUSTERS}) on standardised element "
            "fractions, seeded",
            "chemsys": f"GroupKFold({N_FOLDS}) by sorted element set, shuffled by seed",
        },
        "criterion": "mean over the three schemes of the out-of-fold MAE (censored rows at -15)",
        "bmae": "censored rows count as exact when the prediction is at or below their bound",
        "noise": "max(bootstrap se over DOIs of the paired per-row change, seed sd / "
        "sqrt(seeds)); a win needs a change below -2 x noise on every seed",
        "kinds": {
            kind: f"preset {preset!r}" for kind, preset in KIND_PRESETS.items()
        },  # before issue 21: formula, composition and full
        "study": "custom" if args.variant else args.study,
        "seeds": seeds,
        "trees": args.trees,
        "ensemble_params": ENSEMBLE_PARAMS,
        "seconds": time.perf_counter() - t0,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=2) + "\n")
    tmp.replace(args.out)
    print(f"\n{time.perf_counter() - t0:.0f} s; wrote {args.out}")
    return out


if __name__ == "__main__":
    main()
