"""Pretrained CHGNet and SevenNet-0 features and BVSE barriers as structure features, by
grouped CV (issue 23).

Run as ``nice -n 10 .venv/bin/python benchmarks/pretrained_features.py`` (5 seeds, 100
trees per forest: 44 minutes on a shared 2-core machine for the CHGNet and BVSE variants,
29 more for the SevenNet-0 ones; the embeddings 1.5 and 5 minutes of it; ``--pred-cache``
keeps out-of-fold predictions, so a rerun only computes what is new).
Only the OBELiX *training* split is read; the test split is never opened. Writes
``results/bench/pretrained_features.json`` and prints a table.

The question: does the structure model (the one that serves rows with a CIF; preset
``full``, the default config's) predict better with features transferred from a pretrained
universal potential? Variants, all with the project's estimator (median extra trees and
gradient boosting, ``configs/default.yaml``'s hyperparameters) and censored rows at their
stated bound (the default config's ``censored: bound``):

- ``today``: preset ``full`` (composition, cell, structure, Li-site and ionic descriptors);
- ``+chgnet``: the same plus the 128 pooled CHGNet features of
  ``miscreen.featurize.pretrained`` (occupancy-weighted element embeddings on disordered
  sites);
- ``chgnet alone``: the CHGNet features and nothing else, fitted on the training rows of
  each fold that have a CIF (a row without positions has no input at all);
- ``+bvse``: preset ``full`` plus the BVSE 3-D Li migration barrier
  (``results/bench/barrier_weight_bvse.parquet``, made by ``benchmarks/barrier_weight.py``
  with ``miscreen.verify.barrier_table``; a CIF without a 3-D path below the cutoff gets the
  highest barrier found, a failed one and a row without CIF stay missing);
- ``+chgnet+bvse``: both;
- ``+sevennet``, ``sevennet alone`` (and on CIF rows): as the CHGNet variants, with the 256
  pooled SevenNet-0 features of ``benchmarks/research/sevennet_embeddings.py`` (the 128
  scalar node features after its last interaction block, mean over all sites and over Li
  sites; the occupancy vector in place of the one-hot element input on disordered sites);
- ``+sevennet_slog``: the same features as sign(x) log(1 + |x|), the check that the few
  runaway values (up to 5e7 on three CIFs with crowded partial sites) do not spoil the
  random splits of the extra trees.

Like ``benchmarks/model_research.py`` (whose loading, folds, estimator, errors and paired
comparison this script reuses): every model is trained on every training row (except
``chgnet alone``) and scored on the rows with a CIF, out of fold, under the three
new-chemistry CV schemes of ``miscreen.train.splits.new_chemistry_folds`` (DOI-grouped,
leave-cluster-out, chemical-system-grouped; shuffled by seed). The criterion is the mean of
the three schemes' MAE (censored rows at -15, as upstream); bMAE counts a censored row as
exact at or below its bound. A change against ``today`` counts only beyond twice its noise
(max of the DOI-bootstrap standard error of the paired per-row change and the seed standard
deviation / sqrt(seeds)) and with the same sign on every seed; the same rule is applied to
each scheme by itself (``delta_mae_by_scheme`` in the JSON).

The cell kind (composition, space group and lattice, no positions) cannot be given these
features: no structure can be built from a cell without atomic positions, so it is not run.
The CHGNet and SevenNet-0 embeddings are cached in ``--emb-cache`` and ``--sevennet-cache``
(Parquet files; ``--refresh`` recomputes both) together with the seconds each structure took.

Result (5 seeds, 254 scored rows): ``today`` 2.416 (seed sd 0.064); ``+chgnet`` 2.319,
-0.098 +- 0.038, lower on every seed ("better"), but all of it from leave-cluster-out
(-0.27; DOI -0.01, chemical system -0.01); ``chgnet alone`` 2.229, best under
leave-cluster-out (2.72 vs 3.57) and worse under DOI (2.03 vs 1.85) and chemical system
(1.94 vs 1.83); against today's features fitted on the same CIF rows it is -0.12 +- 0.08
(noise), and so is ``+chgnet`` on CIF rows (-0.02); ``+bvse`` -0.003 (noise). The features
were not registered in a preset: the gain rests on one of the three schemes, and their
cost (about 0.35 s of CPU per OBELiX CIF, 0.04 s per candidate: some 160 s of CPU for the
321 OBELiX CIFs and ~1,250 candidates) would take a cold ``make screen`` well past its
180 s budget.

SevenNet-0 (same 5 seeds and folds): ``+sevennet`` 2.378, -0.038 +- 0.032 (noise; lower on
every seed, but by less than twice the noise), by scheme DOI +0.001, leave-cluster-out
-0.13 +- 0.05 (noise, 4 of 5 seeds lower), chemical system +0.02: the CHGNet pattern at half
its size. ``sevennet alone`` 2.315 (-0.10 +- 0.11, noise): leave-cluster-out -0.84
("better"), DOI +0.31 ("worse"), chemical system +0.23; against today's features on the same
CIF rows -0.03 +- 0.10 (noise; DOI and chemical system "worse"), and ``+sevennet`` on CIF rows
+0.04 +- 0.04 (chemical system +0.11, "worse"). ``+sevennet_slog`` 2.380 (-0.037, noise):
the runaway values change nothing. Fitting on the CIF rows alone already gives
leave-cluster-out -0.19 ("better"), so most of the "alone" variants' gain there is which rows
are fitted, not the features. Cost: 183 s of CPU for the 254 training CIFs on one thread
(median 0.46 s per CIF, max 3.9 s at 328 sites; 8 s to load the model), about 4 times
CHGNet's fast path (42 s). Not adopted: nowhere better than CHGNet's features, which were not
adopted either.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for benchmarks.model_research

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from pymatgen.core import Structure  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from benchmarks import model_research as mr  # noqa: E402
from miscreen import atomic_io  # noqa: E402
from miscreen import schema as S  # noqa: E402

OUT = REPO / "results" / "bench" / "pretrained_features.json"
BVSE = REPO / "results" / "bench" / "barrier_weight_bvse.parquet"
EMB_CACHE = Path("/tmp/miscreen-pretrained/chgnet_obelix_train.parquet")
SEVENNET_CACHE = Path("/tmp/miscreen-pretrained/sevennet_obelix_train.parquet")
COST_COLUMNS = ["seconds", "cpu_seconds", "n_sites", "failure", "model_load_s"]
KIND = "structure"
ESTIMATOR, POLICY = "ensemble_noknn", "bound"  # the default config's model and censoring


@dataclass(frozen=True)
class Spec(mr.Variant):
    """A structure-kind variant: extra groups on top of preset ``full`` or (``alone``) by
    themselves; fitted on every training row or (``cif_only``, implied by ``alone``) on the
    rows with a CIF. Changes are measured against today's model fitted on every row, or
    (``ref_cif``) against today's features fitted on the same CIF rows."""

    alone: bool = False
    cif_only: bool = False
    ref_cif: bool = False

    @property
    def fits_cif_only(self) -> bool:
        return self.alone or self.cif_only

    @property
    def label(self) -> str:
        added = "+".join(self.groups)
        name = f"{added} alone" if self.alone else f"+{added}" if added else "today (full)"
        return f"{name}, CIF rows" if self.fits_cif_only else name

    @property
    def key(self) -> str:
        tail = "_alone" if self.alone else "_cif" if self.cif_only else ""
        return f"pretrained_{'+'.join(self.groups) or 'base'}{tail}"

    def reference(self) -> Spec:
        return Spec(self.kind, (), self.estimator, self.policy, cif_only=self.ref_cif)


def spec(groups: tuple[str, ...] = (), **kw: bool) -> Spec:
    return Spec(KIND, groups, ESTIMATOR, POLICY, **kw)


SPECS = (
    spec(),
    spec(("chgnet",)),
    spec(("chgnet",), alone=True),
    spec(cif_only=True),  # the control: does fitting on CIF rows alone explain a change?
    spec(("chgnet",), cif_only=True),
    spec(("bvse",)),
    spec(("chgnet", "bvse")),
    spec(("sevennet",)),
    spec(("sevennet",), alone=True),
    spec(("sevennet",), cif_only=True),
    spec(("sevennet_slog",)),  # the check: do a few huge values spoil the random splits?
)
# the fitting-rows control: the same variants against today's features on the CIF rows
AGAINST_CIF = tuple(
    spec((name,), **kw)
    for name in ("chgnet", "sevennet")
    for kw in ({"alone": True}, {"cif_only": True})
)


# ---------------------------------------------------------------------------- features


def chgnet_table(records: pd.DataFrame, cache: Path, refresh: bool) -> pd.DataFrame:
    """Pooled CHGNet features of every row with a CIF (NaN elsewhere and where the
    featurizer fails), plus ``seconds`` and ``n_sites`` per structure; cached in ``cache``."""
    from miscreen.featurize.pretrained import PretrainedFeaturizer, embed, model

    labels = PretrainedFeaturizer().feature_labels()
    return embedding_table(
        records, cache, refresh, "chgnet", labels, model, lambda s: embed([s])[0]
    )


def sevennet_table(records: pd.DataFrame, cache: Path, refresh: bool) -> pd.DataFrame:
    """Pooled SevenNet-0 features (``benchmarks/research/sevennet_embeddings.py``) of every
    row with a CIF, as :func:`chgnet_table`."""
    from benchmarks.research import sevennet_embeddings as se

    return embedding_table(
        records, cache, refresh, "sevennet", se.feature_labels(), se.model, se.embed
    )


def embedding_table(
    records: pd.DataFrame,
    cache: Path,
    refresh: bool,
    name: str,
    labels: list[str],
    load: Callable[[], object],
    embed_one: Callable[[Structure], np.ndarray],
) -> pd.DataFrame:
    """``embed_one`` of every row with a CIF (NaN elsewhere and where it raises a
    ``ValueError``), one structure per call on one torch thread, plus ``seconds``,
    ``cpu_seconds``, ``n_sites``, ``failure`` and ``model_load_s`` (``load``'s time) per
    structure; cached in ``cache`` (recomputed with ``refresh``)."""
    if cache.exists() and not refresh:
        table = pd.read_parquet(cache)
        if set(records.index[S.has_structure(records)]) <= set(table.index):
            return table.reindex(records.index)
    import torch

    from miscreen.fetch.parsing import structure_from_json

    torch.set_num_threads(1)
    start = time.perf_counter()
    load()
    load_s = time.perf_counter() - start
    rows: dict[str, dict] = {}
    for rid, js in records.loc[S.has_structure(records), S.STRUCTURE].items():
        t, cpu = time.perf_counter(), time.process_time()
        structure = structure_from_json(js)
        try:
            values = embed_one(structure)
            reason = ""
        except ValueError as exc:  # a failure is a NaN row, counted and reported
            values, reason = np.full(len(labels), np.nan), str(exc)
            print(f"  {name}: {rid}: {exc}")
        rows[str(rid)] = {
            **dict(zip(labels, values, strict=True)),
            "seconds": time.perf_counter() - t,
            "cpu_seconds": time.process_time() - cpu,
            "n_sites": len(structure),
            "failure": reason,
            "model_load_s": load_s,
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    cache.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(cache)
    return table.reindex(records.index)


def signed_log(table: pd.DataFrame) -> pd.DataFrame:
    """sign(x) log(1 + |x|) of every SevenNet-0 feature (columns renamed ``sevennet_slog:``):
    the same order, the heavy tails pulled in (the features of a few CIFs with crowded
    partial sites reach 1e7)."""
    out = np.sign(table) * np.log1p(table.abs())
    return out.rename(columns=lambda c: c.replace("sevennet:", "sevennet_slog:"))


def bvse_table(records: pd.DataFrame, path: Path = BVSE) -> pd.DataFrame:
    """``bvse:e3d_ev`` per row: the cached BVSE 3-D barrier; no 3-D path: the highest barrier
    found; failed or no CIF: NaN."""
    table = pd.read_parquet(path).set_index(S.ID)
    e3d = table["bvse_e3d_ev"].where(table["failure"] == "")
    no_path = (table["failure"] == "") & table["bvse_e3d_ev"].isna()
    e3d[no_path] = float(table["bvse_e3d_ev"].max())
    return pd.DataFrame({"bvse:e3d_ev": e3d.reindex(records.index.astype(str)).to_numpy()},
                        index=records.index)  # fmt: skip


# ------------------------------------------------------------------------------ runs


def features(data: mr.Data, v: Spec) -> pd.DataFrame:
    parts = [] if v.alone else [data.base[KIND]]
    return pd.concat(parts + [data.extra[(g, True)] for g in v.groups], axis=1)


def run(data: mr.Data, v: Spec, seed: int, folds: dict, trees: int) -> dict[str, np.ndarray]:
    """Out-of-fold predictions per scheme (NaN for rows a variant cannot predict)."""
    X = features(data, v)
    names, Xv = list(X.columns), X.to_numpy(float)
    y = data.y.copy()
    y[data.censored] = data.bound[data.censored]  # censored rows at their stated bound
    out: dict[str, np.ndarray] = {}
    for scheme, fold_list in folds.items():
        pred = np.full(len(y), np.nan)
        for tr, te in fold_list:
            fit_rows = tr[data.has_cif[tr]] if v.fits_cif_only else tr
            test_rows = te[data.has_cif[te]] if v.fits_cif_only else te
            model = mr.estimator(v.estimator, trees, seed, names)
            with threadpool_limits(1):
                model.fit(Xv[fit_rows], y[fit_rows])
                if len(test_rows):
                    pred[test_rows] = model.predict(Xv[test_rows])
        out[scheme] = pred
    return out


def cached_run(
    data: mr.Data, v: Spec, seed: int, folds: dict, trees: int, cache: Path
) -> dict[str, np.ndarray]:
    path = cache / f"{v.key}_s{seed}_t{trees}.npz"
    if path.exists():
        with np.load(path) as flat:
            return {k: flat[k] for k in flat.files}
    out = run(data, v, seed, folds, trees)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, **out)
    return out


def evaluate(data: mr.Data, seeds: list[int], trees: int, cache: Path) -> list[dict]:
    preds: mr.Preds = {}
    folds = {s: mr.splits(data, s) for s in seeds}
    t0 = time.perf_counter()
    for v in SPECS:
        t = time.perf_counter()
        for s in seeds:
            preds[(v.key, s)] = cached_run(data, v, s, folds[s], trees, cache)
        print(f"{v.label:28s} {time.perf_counter() - t:6.1f} s "
              f"(total {time.perf_counter() - t0:5.0f} s)", flush=True)  # fmt: skip
    results = []
    for v in SPECS + tuple(replace(v, ref_cif=True) for v in AGAINST_CIF):
        r = mr.summarise(data, v, preds, seeds)
        r.update(alone=v.alone, fit_rows="with CIF" if v.fits_cif_only else "all")
        for m in ("mae", "bmae", "spearman"):
            per_seed = r[f"{m}_per_seed"]
            r[f"{m}_seed_sd"] = float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else None
        if "reference" in r:
            r["delta_mae_by_scheme"] = by_scheme(data, v, preds, seeds)
        results.append(r)
    return results


def by_scheme(data: mr.Data, v: Spec, preds: mr.Preds, seeds: list[int]) -> dict[str, dict]:
    """The paired MAE change against the reference in each scheme by itself, judged by the
    study's rule (beyond twice its noise, the same sign on every seed)."""
    rng = np.random.default_rng(0)
    rows, ref = data.has_cif, v.reference()
    out = {}
    for scheme in mr.SCHEMES:
        per_seed, ses = [], []
        for s in seeds:
            d = (mr.row_errors(data, preds[(v.key, s)][scheme])[0]
                 - mr.row_errors(data, preds[(ref.key, s)][scheme])[0])[rows]  # fmt: skip
            per_seed.append(float(d.mean()))
            ses.append(mr.boot_se(d, data.doi[rows], rng))
        delta, _, noise, lower, verdict = mr.judge(per_seed, ses)
        out[scheme] = {"delta": delta, "noise": noise, "seeds_lower": lower, "verdict": verdict}
    return out


def print_table(results: list[dict]) -> None:
    print(f"\n{results[0]['rows']} scored rows (training split, with CIF). MAE in log10(S/cm): "
          "mean of doi / cluster / chemsys CV; sd = seed sd; dMAE = paired change vs the "
          "'vs' variant, noise = max(DOI-bootstrap se, seed sd / sqrt(seeds))")  # fmt: skip
    print(f"{'variant':28s} {'vs':20s} {'MAE':>6s} {'sd':>5s} {'doi':>6s} {'clus':>6s} "
          f"{'chem':>6s} {'rho':>5s} {'bMAE':>6s} {'dMAE':>7s} {'noise':>5s} {'verdict':7s} "
          f"{'dbMAE':>7s} {'verdict':7s}")  # fmt: skip
    for r in results:
        tail = ""
        if "delta_mae" in r:
            tail = (f"{r['delta_mae']:+7.3f} {r['delta_mae_noise']:5.3f} "
                    f"{r['delta_mae_verdict']:7s} {r['delta_bmae']:+7.3f} "
                    f"{r['delta_bmae_verdict']:7s}")  # fmt: skip
        sd = r["mae_seed_sd"] if r["mae_seed_sd"] is not None else float("nan")
        vs = r.get("reference", "")[:20]
        print(f"{r['variant'][:28]:28s} {vs:20s} {r['mae']:6.3f} {sd:5.3f} "
              f"{r['doi_mae']:6.3f} {r['cluster_mae']:6.3f} {r['chemsys_mae']:6.3f} "
              f"{r['spearman']:5.2f} {r['bmae']:6.3f} {tail}")  # fmt: skip


def print_schemes(results: list[dict]) -> None:
    print("\nPaired MAE change per scheme (noise; seeds lower of all; verdict):")
    for r in results:
        if "delta_mae_by_scheme" not in r:
            continue
        cells = "  ".join(
            f"{sc} {x['delta']:+.3f} ({x['noise']:.3f}; {x['seeds_lower']}; {x['verdict']})"
            for sc, x in r["delta_mae_by_scheme"].items()
        )
        print(f"{r['variant'][:28]:28s} vs {r['reference'][:20]:20s} {cells}")


def cost(table: pd.DataFrame) -> dict:
    """Per-structure seconds (wall and CPU) of pooled features (one structure per call,
    one thread; wall time depends on the machine's load, CPU time much less)."""
    done = table.dropna(subset=["seconds"])
    return {
        "structures": len(done),
        "failures": int((done["failure"] != "").sum()),
        "model_load_s": float(done["model_load_s"].iloc[0]),
        "seconds_total": float(done["seconds"].sum()),
        "cpu_seconds_total": float(done["cpu_seconds"].sum()),
        "cpu_seconds_median": float(done["cpu_seconds"].median()),
        "cpu_seconds_max": float(done["cpu_seconds"].max()),
        "seconds_median": float(done["seconds"].median()),
        "seconds_max": float(done["seconds"].max()),
        "n_sites_max": int(done["n_sites"].max()),
        "seconds_per_site": float(done["seconds"].sum() / done["n_sites"].sum()),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--trees", type=int, default=100)
    ap.add_argument("--cache-dir", type=Path, default=Path("/tmp/miscreen-pretrained/features"))
    ap.add_argument("--emb-cache", type=Path, default=EMB_CACHE)
    ap.add_argument("--pred-cache", type=Path, default=Path("/tmp/miscreen-pretrained/preds"))
    ap.add_argument("--sevennet-cache", type=Path, default=SEVENNET_CACHE)
    ap.add_argument("--refresh", action="store_true", help="recompute both embeddings")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    os.environ.setdefault("MISCREEN_DATA_DIR", str(args.cache_dir / "data"))
    t0 = time.perf_counter()
    data = mr.load(args.cache_dir)
    emb = chgnet_table(data.records, args.emb_cache, args.refresh)
    data.extra[("chgnet", True)] = emb.drop(columns=COST_COLUMNS)
    seven = sevennet_table(data.records, args.sevennet_cache, args.refresh)
    data.extra[("sevennet", True)] = seven.drop(columns=COST_COLUMNS)
    data.extra[("sevennet_slog", True)] = signed_log(data.extra[("sevennet", True)])
    data.extra[("bvse", True)] = bvse_table(data.records)
    n_bvse = int(data.extra[("bvse", True)].notna().sum().iloc[0])
    seeds = list(range(args.seeds))
    print(f"{len(data.y)} training rows ({int(data.has_cif.sum())} with CIFs, {n_bvse} with a "
          f"BVSE barrier); {args.trees} trees, {args.seeds} seeds")  # fmt: skip
    results = evaluate(data, seeds, args.trees, args.pred_cache)
    print_table(results)
    print_schemes(results)
    costs = {name: cost(table) for name, table in (("CHGNet", emb), ("SevenNet-0", seven))}
    for name, c in costs.items():
        print(f"\n{name} features: {c['structures']} structures, {c['failures']} failures, "
              f"median {c['seconds_median']:.3f} s, max {c['seconds_max']:.2f} s "
              f"({c['n_sites_max']} sites), total {c['seconds_total']:.0f} s wall, "
              f"{c['cpu_seconds_total']:.0f} s CPU on one thread, median "
              f"{c['cpu_seconds_median']:.3f} s CPU per CIF "
              f"(+ {c['model_load_s']:.1f} s to load the model)")  # fmt: skip
    out = {
        "question": "issue 23: pretrained (CHGNet, SevenNet-0) features and BVSE barriers for the "
        "structure model, by new-chemistry CV on the OBELiX training split",
        "data": "OBELiX train split (Therrien et al. 2025, CC BY 4.0); the test split is not read",
        "model": "CHGNet 0.3.0 weights (chgnet package), atom features before the last "
        "interaction block; occupancy-weighted element embeddings on disordered sites",
        "citation": "B. Deng et al., Nat. Mach. Intell. 5, 1031 (2023)",
        "sevennet_model": "SevenNet-0 (7net-0 weights in the sevenn package), the 128 scalar "
        "node features after the fifth (last) interaction block; the one-hot element input "
        "replaced by the occupancy vector on disordered sites "
        "(benchmarks/research/sevennet_embeddings.py)",
        "sevennet_citation": "Y. Park et al., J. Chem. Theory Comput. 20, 4857 (2024)",
        "schemes": "doi, cluster, chemsys (miscreen.train.splits.new_chemistry_folds, "
        "shuffled by seed), 5 folds each",
        "estimator": f"{ESTIMATOR} (median extra trees + gradient boosting, "
        f"{mr.ENSEMBLE_PARAMS}), censored rows at their bound",
        "criterion": "mean over the three schemes of the out-of-fold MAE on the rows with a "
        "CIF (censored rows at -15)",
        "noise": "max(bootstrap se over DOIs of the paired per-row change, seed sd / "
        "sqrt(seeds)); a win needs a change below -2 x noise on every seed",
        "cell_kind": "not run: a cell without positions gives no structure to embed",
        "seeds": seeds,
        "trees": args.trees,
        "chgnet_cost": costs["CHGNet"],
        "sevennet_cost": costs["SevenNet-0"],
        "seconds": time.perf_counter() - t0,
        "results": results,
    }
    atomic_io.write_json(args.out, out)
    print(f"\n{time.perf_counter() - t0:.0f} s; wrote {args.out}")
    return out


if __name__ == "__main__":
    main()
