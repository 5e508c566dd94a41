"""Wiring of the stages for one configured run. Each function reads the config and calls
stage functions; the science lives in the stage packages."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from miscreen import schema as S
from miscreen import store
from miscreen.config import (
    CandidateSource,
    CifDirSource,
    Config,
    CsvSource,
    JsonlSource,
    ObelixSource,
    PymatgenSource,
    StoreSource,
)
from miscreen.featurize import FeatureSchema, featurize_records
from miscreen.fetch import local
from miscreen.fetch.labels import apply_censoring
from miscreen.fetch.obelix import load_obelix
from miscreen.fetch.registry import DATASETS, data_dir, fetch_file
from miscreen.screen import Filters, predict_frame, rank_candidates
from miscreen.train.evaluate import coverage, regression_metrics
from miscreen.train.fit import fit_conformal
from miscreen.train.persist import SavedModel, load_model, save_model

log = logging.getLogger(__name__)

COMPOSITION_MODEL = "composition"
STRUCTURE_MODEL = "structure"


@dataclass
class Loaded:
    """Records plus the failures and input files met while loading them."""

    records: pd.DataFrame
    failures: pd.DataFrame
    inputs: list[dict] = field(default_factory=list)

    def __add__(self, other: Loaded) -> Loaded:
        return Loaded(
            _concat(self.records, other.records),
            _concat(self.failures, other.failures),
            self.inputs + other.inputs,
        )


def _concat(*frames: pd.DataFrame) -> pd.DataFrame:
    """Concatenate the non-empty frames; all empty: the first (so its columns survive)."""
    parts = [df for df in frames if not df.empty]
    return pd.concat(parts, ignore_index=True) if parts else frames[0]


# ---------------------------------------------------------------- loading


def _obelix_inputs(split: str) -> list[dict]:
    return [
        {**store.file_entry(fetch_file("obelix", name)), "url": DATASETS["obelix"].file(name).url}
        for name in (f"{split}.csv", "all_cifs.tar.gz")
    ]


def load_obelix_split(
    split: str,
    exclude_families: tuple[str, ...] = (),
    families: tuple[str, ...] = (),
    require_structure: bool = False,
) -> Loaded:
    records, failures = load_obelix(split)  # type: ignore[arg-type]
    keep = ~records[S.FAMILY].isin(exclude_families)
    if families:
        keep &= records[S.FAMILY].isin(families)
    if require_structure:
        keep &= records[S.STRUCTURE].notna()
    return Loaded(records[keep].reset_index(drop=True), failures, _obelix_inputs(split))


def load_labelled(cfg: Config, split: str) -> Loaded:
    """Training or test rows named by ``data`` in the config."""
    if cfg.data.train == "obelix":
        return load_obelix_split(split, cfg.data.exclude_families)
    path = Path(cfg.data.train)
    records, failures = local.load_labelled_csv(path, target=cfg.data.target)
    return Loaded(records, failures, [store.file_entry(path)])


def load_source(source: CandidateSource) -> Loaded:
    """One candidate source of the config -> records."""
    if isinstance(source, ObelixSource):
        loaded = load_obelix_split(
            source.split, source.exclude_families, source.families, source.require_structure
        )
        drop = [S.TARGET, S.CENSORED, "censor_bound"]
        return Loaded(loaded.records.drop(columns=drop), loaded.failures, loaded.inputs)
    if isinstance(source, PymatgenSource):
        return Loaded(*local.load_pymatgen_examples(source.names))
    if isinstance(source, JsonlSource):
        if source.dataset:
            ds = DATASETS[source.dataset]
            path = fetch_file(ds.name, ds.files[0].filename)
        elif source.path is not None:
            path = source.path
        else:
            raise ValueError("a jsonl candidate source needs 'path' or 'dataset'")
        records, failures = local.load_jsonl(
            path,
            source=source.dataset or None,
            id_field=source.id_field,
            id_prefix=source.id_prefix,
            require_elements=source.require_elements,
        )
        return Loaded(records, failures, [store.file_entry(path)])
    if isinstance(source, CifDirSource):
        return Loaded(*local.load_cif_dir(source.path))
    if isinstance(source, CsvSource):
        records, failures = local.load_candidate_csv(source.path)
        return Loaded(records, failures, [store.file_entry(source.path)])
    if isinstance(source, StoreSource):
        from miscreen.store.structures import read_store

        return Loaded(read_store(source.path), S.empty_failures(), [{"path": str(source.path)}])
    raise TypeError(f"unknown candidate source {source!r}")


def load_candidates(cfg: Config) -> Loaded:
    """All candidate sources, deduplicated by id (first source wins)."""
    loaded = Loaded(pd.DataFrame(columns=list(S.RECORD_COLUMNS)), S.empty_failures())
    for source in cfg.candidates:
        loaded = loaded + load_source(source)
    dup = loaded.records[S.ID].duplicated()
    if dup.any():
        log.warning("dropping %d candidates whose id appeared in an earlier source", dup.sum())
    loaded.records = loaded.records.loc[~dup].reset_index(drop=True)
    return loaded


# ---------------------------------------------------------------- models


def _has_structure(records: pd.DataFrame) -> pd.Series:
    col = records[S.STRUCTURE] if S.STRUCTURE in records else pd.Series(None, index=records.index)
    return col.notna() & (col.astype(str) != "")


def model_plan(cfg: Config) -> dict[str, str]:
    """Model name -> feature preset. Both models train on every labelled row: rows without
    a structure simply have no position-based features (a constant the trees can split on)."""
    plan = {COMPOSITION_MODEL: "composition"}
    if cfg.features.preset != "composition":
        plan[STRUCTURE_MODEL] = cfg.features.preset
    return plan


def feature_cache_dir() -> Path:
    """Features are cached by structure fingerprint, featurizer and version: safe to share."""
    return data_dir() / "cache" / "features"


def featurize(
    records: pd.DataFrame, preset: str, jobs: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, FeatureSchema]:
    return featurize_records(records, preset, jobs=jobs, cache_dir=feature_cache_dir())


ROW_KINDS = ("structure_rows", "composition_rows")
ROUTING = "routing.json"


def train_models(cfg: Config, train: Loaded) -> tuple[dict[str, SavedModel], dict, pd.DataFrame]:
    """Fit and save every model of the plan -> (model per row kind, cv metrics, failures).

    Rows with a structure and rows without one are each served by the model with the lower
    grouped-CV (out-of-fold) error on training rows of that kind: a choice made on the
    training split alone, recorded in ``models/<run>/routing.json``.
    """
    labelled = apply_censoring(train.records, cfg.data.censored)
    failures = [S.empty_failures()]
    saved: dict[str, SavedModel] = {}
    metrics: dict = {}
    oof: dict[str, pd.Series] = {}
    for name, preset in model_plan(cfg).items():
        features, fails, schema = featurize(labelled, preset, cfg.features.jobs)
        failures.append(fails)
        labels = labelled.set_index(S.ID).loc[features.index]
        estimator, cv = fit_conformal(features, labels, cfg.model, cfg.seed)
        oof[name] = pd.Series(np.abs(estimator.residuals_), index=features.index)
        meta = {
            "model": name,
            "preset": preset,
            "config": cfg.model.model_dump(mode="json"),
            "seed": cfg.seed,
            "censored_policy": cfg.data.censored,
            "training_rows": len(labels),
            "training_data_sha256": store.sha256_frame(labels[[S.TARGET]].reset_index()),
            "training_inputs": train.inputs,
            "metrics": cv,
        }
        save_model(cfg.model_dir / name, estimator, schema, meta)
        saved[name] = load_model(cfg.model_dir / name)
        metrics[name] = cv
        log.info("%s model: %d rows, CV MAE %.3f", name, len(labels), cv["cv_mae"])
    has_structure = _has_structure(labelled.set_index(S.ID))
    routing: dict = {}
    for kind, mask in (("structure_rows", has_structure), ("composition_rows", ~has_structure)):
        ids = has_structure.index[mask]
        errs = {n: float(o.reindex(ids).mean()) for n, o in oof.items()}
        best = min(errs, key=lambda n: (np.nan_to_num(errs[n], nan=np.inf), n))
        routing[kind] = {"model": best, "cv_mae": errs, "rows": len(ids)}
        log.info("%s use the %s model (grouped-CV MAE on them: %s)", kind, best, errs)
    metrics["routing"] = routing
    store.write_json(cfg.model_dir / ROUTING, routing)
    return (
        {kind: saved[routing[kind]["model"]] for kind in ROW_KINDS},
        metrics,
        _concat(*failures),
    )


def load_models(directory: Path) -> dict[str, SavedModel]:
    """The model serving each row kind of a trained run, as its ``routing.json`` says."""
    directory = Path(directory)
    path = directory / ROUTING
    if not path.is_file():
        raise FileNotFoundError(
            f"{directory} holds no trained models (no {ROUTING}); train them with "
            f"`miscreen train CONFIG` or `miscreen train --data FILE --out {directory}`"
        )
    routing = store.read_json(path)
    if not all(isinstance(routing.get(kind), dict) for kind in ROW_KINDS):
        raise ValueError(
            f"{path} was written by an older miscreen (expected an entry per row kind: "
            f"{', '.join(ROW_KINDS)}); retrain the models in {directory}"
        )
    loaded = {name: load_model(directory / name) for name in {r["model"] for r in routing.values()}}
    return {kind: loaded[routing[kind]["model"]] for kind in ROW_KINDS}


def predict_records(
    models: dict[str, SavedModel],
    records: pd.DataFrame,
    interval: float,
    jobs: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Predict every record with the model chosen for its row kind -> (records + predictions,
    failures). The ``model`` column says which model predicted each row."""
    records = records.reset_index(drop=True)
    with_structure = _has_structure(records)
    parts, failures = [], [S.empty_failures()]
    for kind, rows in (
        ("structure_rows", records[with_structure]),
        ("composition_rows", records[~with_structure]),
    ):
        if rows.empty:
            continue
        saved = models[kind]
        features, fails, schema = featurize(rows, saved.schema.preset, jobs)
        saved.schema.check(schema)
        failures.append(fails)
        if features.empty:
            continue
        pred = predict_frame(saved.estimator, features, interval)
        pred["model"] = saved.meta["model"]
        parts.append(pred)
    preds = pd.concat(parts) if parts else pd.DataFrame(columns=["model"])
    out = records.merge(preds, left_on=S.ID, right_index=True, how="left")
    return out, _concat(*failures)


# ---------------------------------------------------------------- evaluation


def evaluate(predicted: pd.DataFrame, interval: float) -> dict:
    """Test metrics: all rows, the CIF subset, and without censored rows."""
    ok = predicted["predicted_log10_sigma"].notna()
    p = predicted[ok]
    y, yhat = p[S.TARGET].to_numpy(float), p["predicted_log10_sigma"].to_numpy(float)
    cif = _has_structure(p).to_numpy()
    unc = ~p[S.CENSORED].astype(bool).to_numpy()
    out = regression_metrics(y, yhat, prefix="test_")
    out |= regression_metrics(y[cif], yhat[cif], prefix="test_", suffix="_cif_subset")
    out |= regression_metrics(y[unc], yhat[unc], prefix="test_", suffix="_uncensored")
    out[f"test_coverage_{round(interval * 100)}"] = coverage(
        y, p["lower"].to_numpy(float), p["upper"].to_numpy(float)
    )
    out["test_rows_without_prediction"] = int((~ok).sum())
    return out


# ---------------------------------------------------------------- the stages
# Each stage reads its inputs from and writes its outputs to ``results/<run_name>/`` so that
# stages can run separately (``miscreen train|screen|report``) or together (``run``).


def train_stage(cfg: Config) -> dict:
    """Fit the models, evaluate on the test split; writes metrics and test predictions."""
    run_dir = cfg.run_dir
    train = load_labelled(cfg, cfg.data.train_split)
    models, cv_metrics, train_fail = train_models(cfg, train)
    metrics: dict = {
        "cv_mae": cv_metrics[COMPOSITION_MODEL]["cv_mae"],
        "cv_n": cv_metrics[COMPOSITION_MODEL]["cv_n"],
        "cv_by_model": {k: v for k, v in cv_metrics.items() if k != "routing"},
        "routing": cv_metrics["routing"],
        "censored_policy": cfg.data.censored,
    }
    failures = [train.failures, train_fail]
    inputs = list(train.inputs)
    if cfg.data.test_split is not None:
        test = load_labelled(cfg, cfg.data.test_split)
        test_pred, test_fail = predict_records(
            models, test.records, cfg.model.interval, cfg.features.jobs
        )
        failures += [test.failures, test_fail]
        inputs += test.inputs
        metrics |= evaluate(test_pred, cfg.model.interval)
        test_pred["has_structure"] = _has_structure(test_pred)
        keep = [
            S.ID,
            S.FORMULA,
            S.FAMILY,
            S.TARGET,
            S.CENSORED,
            "has_structure",
            "model",
            "predicted_log10_sigma",
            "lower",
            "upper",
            "uncertainty",
            "out_of_domain",
        ]
        store.write_table(test_pred[keep], run_dir / TEST_PREDICTIONS)
    store.write_json(run_dir / METRICS, metrics)
    write_failures(run_dir, "train", pd.concat(failures, ignore_index=True))
    update_manifest(
        cfg,
        "train",
        {
            "inputs": unique_inputs(inputs),
            "models": {n: str(cfg.model_dir / m.meta["model"]) for n, m in models.items()},
            "model_sha256": {n: m.meta["model_sha256"] for n, m in models.items()},
            "training_rows": len(train.records),
        },
    )
    return metrics


def screen_filters(cfg: Config) -> Filters:
    return Filters(
        require_elements=cfg.screen.require_elements,
        exclude_elements=cfg.screen.exclude_elements,
        max_e_above_hull=cfg.screen.max_e_above_hull,
        min_band_gap=cfg.screen.min_band_gap,
        max_sites=cfg.screen.max_sites,
        min_li_fraction=cfg.screen.min_li_fraction,
    )


def screen_stage(cfg: Config) -> pd.DataFrame:
    """Predict and rank the configured candidates with the run's saved models."""
    models = load_models(cfg.model_dir)
    cands = load_candidates(cfg)
    predicted, cand_fail = predict_records(
        models, cands.records, cfg.model.interval, cfg.features.jobs
    )
    return write_screen_outputs(
        cfg,
        predicted,
        _concat(cands.failures, cand_fail),
        {
            "inputs": unique_inputs(cands.inputs),
            "model_sha256": {n: m.meta["model_sha256"] for n, m in models.items()},
        },
    )


def write_screen_outputs(
    cfg: Config, predicted: pd.DataFrame, failures: pd.DataFrame, provenance: dict
) -> pd.DataFrame:
    """Rank predictions globally and write candidates.csv/.parquet, failures and manifest.

    The one place screen outputs are written, for unsharded runs and for ``merge``.
    """
    ranked = rank_candidates(
        predicted, screen_filters(cfg), cfg.screen.score, cfg.screen.supply_risk_weight
    )
    lead = ["rank", S.ID, S.SOURCE, S.FORMULA, "predicted_log10_sigma", "uncertainty"]
    columns = lead + [c for c in ranked.columns if c not in lead and c != S.STRUCTURE]
    store.write_table(ranked[columns], cfg.run_dir / CANDIDATES_CSV)
    store.write_table(ranked[columns], cfg.run_dir / CANDIDATES_PARQUET)
    write_failures(cfg.run_dir, "screen", failures)
    update_manifest(
        cfg,
        "screen",
        {
            **provenance,
            "candidates": len(ranked),
            "ranked": int(ranked["rank"].notna().sum()),
        },
    )
    return ranked


def report_stage(cfg: Config) -> Path:
    """Render ``report.html`` from the run folder's files."""
    from miscreen.report import build_report

    return build_report(cfg.run_dir, top_k=cfg.screen.top_k)


def run(cfg: Config, config_path: Path | None = None) -> Path:
    """Train, evaluate, screen and report; every output lands in ``results/<run_name>/``."""
    np.random.seed(cfg.seed)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    update_manifest(cfg, "run", {"config_path": str(config_path) if config_path else None})
    train_stage(cfg)
    screen_stage(cfg)
    report_stage(cfg)
    return cfg.run_dir


TEST_PREDICTIONS = "test_predictions.csv"
METRICS = "metrics.json"
CANDIDATES_CSV = "candidates.csv"
CANDIDATES_PARQUET = "candidates.parquet"
FAILURES = "failures.csv"
MANIFEST = "manifest.json"
REPORT = "report.html"


def write_failures(run_dir: Path, stage: str, failures: pd.DataFrame) -> None:
    """Keep each stage's failures and rewrite the union as ``failures.csv``."""
    failures = failures.drop_duplicates().reset_index(drop=True)
    store.write_table(failures, run_dir / "stages" / f"{stage}_failures.parquet")
    for _, f in failures.iterrows():
        log.warning("skipped %s (%s, %s): %s", f[S.ID], f[S.SOURCE], f["stage"], f["reason"])
    parts = [store.read_table(p) for p in sorted((run_dir / "stages").glob("*_failures.parquet"))]
    union = pd.concat(parts, ignore_index=True) if parts else S.empty_failures()
    store.write_table(union, run_dir / FAILURES)


def update_manifest(cfg: Config, stage: str, entry: dict) -> None:
    path = cfg.run_dir / MANIFEST
    manifest = store.read_json(path) if path.exists() else {}
    base = store.base_manifest(cfg.model_dump(mode="json"), cfg.seed)
    manifest.update({k: v for k, v in base.items() if k != "created_at"})
    manifest.setdefault("created_at", base["created_at"])
    manifest.setdefault("stages", {})[stage] = {**entry, "finished_at": store.now_utc()}
    store.write_json(path, manifest)


def unique_inputs(entries: list[dict]) -> list[dict]:
    seen, out = set(), []
    for e in entries:
        key = e.get("path")
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out
