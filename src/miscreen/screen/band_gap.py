"""Band gap for every candidate: the source's value where it gives one, else an estimate
with its method and a standard deviation.

Estimates, all fitted on rows with a known gap (the snapshots' Materials Project PBE gaps):

- ``composition_model``: extra trees on the ``composition`` feature preset; the per-row sd is
  the spread of the trees, scaled so that held-out residuals (chemical-system-grouped folds)
  fall within one sd as often as a normal distribution says (68 %).
- ``composition_n_model``: the same with the refractive index ``n`` and the gaps the three
  relations below give for it as more features, fitted on the training rows that have ``n``
  (matbench-dielectric gives it).
- ``refractive_index``: an empirical relation of the gap to ``n`` (Moss Eg·n⁴ = 95 eV,
  Ravindra n = 4.084 − 0.62·Eg, Hervé–Vandamme n² = 1 + (13.6/(Eg + 3.4))²), each turned
  into a gap and calibrated linearly on the training rows with both; the relation with the
  lowest held-out error is kept, its sd the held-out root-mean-square error.

Rows without ``n`` get ``composition_model``; rows with ``n`` the one of the three with the
lowest held-out error on the training rows with ``n`` at fit time (``benchmarks/band_gap.py``
measured: ``composition_n_model``). Choices are made on held-out training rows only, never
on screening results.

The training gaps are PBE gaps of non-metals (the snapshots hold no gap below 0.1 eV), so an
estimate inherits PBE's underestimate and cannot say "metal"; :func:`p_band_gap_above` turns
the sd into the probability that the gap reaches a threshold, so a caller can keep a row
whose gap is below the threshold only by chance (e.g. remove when that probability < 0.1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.ensemble import ExtraTreesRegressor
from sklearn.impute import SimpleImputer
from sklearn.model_selection import GroupKFold

from miscreen import schema as S
from miscreen.featurize import FeatureOptions, featurize_records
from miscreen.fetch.reference_rows import VOLUME_PER_ATOM
from miscreen.screen import p_gap_at_least
from miscreen.train.splits import chemsys_groups

REFRACTIVE_INDEX = S.REFRACTIVE_INDEX
SOURCE = "source"
COMPOSITION_MODEL = "composition_model"
COMPOSITION_N_MODEL = "composition_n_model"
REFRACTIVE = "refractive_index"
N_FOLDS = 5
MIN_SD = 0.05  # eV; no estimate is more certain than this


def moss(n: np.ndarray) -> np.ndarray:
    """Moss: Eg·n⁴ = 95 eV."""
    return 95.0 / n**4


def ravindra(n: np.ndarray) -> np.ndarray:
    """Ravindra: n = 4.084 − 0.62·Eg."""
    return (4.084 - n) / 0.62


def herve_vandamme(n: np.ndarray) -> np.ndarray:
    """Hervé–Vandamme: n² = 1 + (13.6 / (Eg + 3.4))²."""
    return 13.6 / np.sqrt(np.clip(n**2 - 1.0, 1e-6, None)) - 3.4


RELATIONS = {"moss": moss, "ravindra": ravindra, "herve_vandamme": herve_vandamme}


@dataclass
class RefractiveFit:
    """A relation of :data:`RELATIONS` with its linear calibration ``a + b·Eg(n)``."""

    relation: str
    a: float
    b: float
    sd: float
    cv_mae: dict[str, float] = field(default_factory=dict)

    def predict(self, n: np.ndarray) -> np.ndarray:
        return np.clip(self.a + self.b * RELATIONS[self.relation](np.asarray(n, float)), 0, None)


class Forest:
    """Extra trees with median imputation; the sd of a row is the spread of the trees times
    ``sd_scale`` (set from held-out residuals: within one sd 68 % of the time)."""

    def __init__(self, X: np.ndarray, y: np.ndarray, seed: int = 0, jobs: int = 1) -> None:
        self.imputer = SimpleImputer(strategy="median", keep_empty_features=True).fit(X)
        self.trees = ExtraTreesRegressor(
            n_estimators=200, min_samples_leaf=2, max_features=0.3, n_jobs=jobs, random_state=seed
        ).fit(self.imputer.transform(X), y)
        self.sd_scale = 1.0

    def spread(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean clipped at 0, spread across trees) per row."""
        Xi = self.imputer.transform(X)
        per_tree = np.stack([t.predict(Xi) for t in self.trees.estimators_])
        return np.clip(per_tree.mean(axis=0), 0, None), per_tree.std(axis=0)

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean, sd) per row."""
        mean, spread = self.spread(X)
        return mean, np.maximum(self.sd_scale * spread, MIN_SD)


def with_n_features(X: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``X`` with ``n`` and the gap of each relation of :data:`RELATIONS` as columns: the
    trees draw a random 30 % of the columns per split, so n gets four chances, not one."""
    return np.column_stack([X, n, *(f(n) for f in RELATIONS.values())])


def held_out_forest(
    X: np.ndarray, y: np.ndarray, folds: list, seed: int = 0, jobs: int = 1
) -> tuple[Forest, np.ndarray]:
    """A forest on the rows of the folds, its ``sd_scale`` from their held-out predictions,
    and those predictions (NaN for rows in no test fold)."""
    oof, spread = np.full_like(y, np.nan), np.full_like(y, np.nan)
    for tr, te in folds:
        oof[te], spread[te] = Forest(X[tr], y[tr], seed, jobs).spread(X[te])
    done = np.isfinite(oof)
    z = np.abs(oof[done] - y[done]) / np.maximum(spread[done], 1e-6)
    forest = Forest(X[done], y[done], seed, jobs)
    forest.sd_scale = float(np.quantile(z, norm.cdf(1) - norm.cdf(-1)))
    return forest, oof


@dataclass
class GapModel:
    """A fitted band-gap estimator (see the module docstring); picklable."""

    composition: Forest
    columns: list[str]
    preset: str
    with_n: str  # the estimate for rows that carry n (a method name)
    with_n_forest: Forest | None = None
    refractive: RefractiveFit | None = None
    cv_mae: dict[str, float] = field(default_factory=dict)
    n_train: int = 0


def fit_refractive(n: np.ndarray, gap: np.ndarray, groups: np.ndarray) -> RefractiveFit:
    """The relation (with linear calibration) of lowest grouped-CV MAE on (n, gap) pairs."""
    n, gap = np.asarray(n, float), np.asarray(gap, float)
    folds = list(GroupKFold(n_splits=min(N_FOLDS, len(set(groups)))).split(n, gap, groups))
    cv_mae: dict[str, float] = {}
    oof_by: dict[str, np.ndarray] = {}
    for name, f in RELATIONS.items():
        oof = np.empty_like(gap)
        for train, test in folds:
            b, a = np.polyfit(f(n[train]), gap[train], 1)
            oof[test] = np.clip(a + b * f(n[test]), 0, None)
        cv_mae[name] = float(np.mean(np.abs(oof - gap)))
        oof_by[name] = oof
    best = min(cv_mae, key=cv_mae.__getitem__)
    b, a = np.polyfit(RELATIONS[best](n), gap, 1)
    sd = float(np.sqrt(np.mean((oof_by[best] - gap) ** 2)))
    return RefractiveFit(best, float(a), float(b), max(sd, MIN_SD), cv_mae)


def gap_features(
    records: pd.DataFrame, preset: str = "composition", options: FeatureOptions | None = None
) -> pd.DataFrame:
    """Composition features of ``records`` in row order (NaN rows where featurizing failed)."""
    rows = S.ensure_record_columns(records)
    rows[S.STRUCTURE] = None  # the preset reads the composition only
    feats, _, schema = featurize_records(rows, preset, options)
    return feats.reindex(records[S.ID].astype(str)).reindex(columns=list(schema.names))


VOLUME_TOL = 0.02  # relative: the same material in two snapshots (relaxations differ a little)


def gap_training_rows(references: pd.DataFrame) -> pd.DataFrame:
    """The reference rows with a known band gap, each with the refractive index ``n`` of a
    reference row of the same material that carries one (same reduced formula, volume per
    atom within 2 %: matbench-dielectric holds Materials Project structures with ``n`` but
    no gap; their median where several match), NaN where none does. ``references`` has the
    columns of :func:`miscreen.fetch.reference_rows.reference_rows`."""
    gap = pd.to_numeric(references[S.BAND_GAP], errors="coerce")
    train = references[gap.notna()].reset_index(drop=True)
    n_all = _refractive_of(references)
    volume = pd.to_numeric(references.get(VOLUME_PER_ATOM), errors="coerce").to_numpy(float)
    has_n = np.isfinite(n_all) & np.isfinite(volume)
    by_formula: dict[str, list[tuple[float, float]]] = {}
    for f, v, n in zip(references[S.FORMULA][has_n], volume[has_n], n_all[has_n], strict=True):
        by_formula.setdefault(str(f), []).append((v, n))
    out = []
    train_volume = pd.to_numeric(train.get(VOLUME_PER_ATOM), errors="coerce").to_numpy(float)
    for f, v in zip(train[S.FORMULA], train_volume, strict=True):
        hits = [n for vv, n in by_formula.get(str(f), []) if abs(vv - v) <= VOLUME_TOL * vv]
        out.append(float(np.median(hits)) if hits else np.nan)
    train[REFRACTIVE_INDEX] = out
    return train


def _refractive_of(records: pd.DataFrame) -> np.ndarray:
    if REFRACTIVE_INDEX not in records:
        return np.full(len(records), np.nan)
    return pd.to_numeric(records[REFRACTIVE_INDEX], errors="coerce").to_numpy(float)


def fit_gap_model(
    training: pd.DataFrame,
    preset: str = "composition",
    seed: int = 0,
    options: FeatureOptions | None = None,
    features: pd.DataFrame | None = None,
) -> GapModel:
    """Fit on the rows of ``training`` with a known ``band_gap`` (records table; an optional
    ``refractive_index_n`` column); choices by grouped (chemical-system) CV."""
    train = training[pd.to_numeric(training[S.BAND_GAP], errors="coerce").notna()]
    train = train.reset_index(drop=True)
    if len(train) < 2 * N_FOLDS:
        raise ValueError(f"a gap model needs at least {2 * N_FOLDS} rows with a known gap")
    y = train[S.BAND_GAP].astype(float).to_numpy()
    feats = features.reindex(train[S.ID].astype(str)) if features is not None else None
    feats = feats if feats is not None else gap_features(train, preset, options)
    X = feats.to_numpy(float)
    groups = chemsys_groups(train[S.COMPOSITION])
    folds = list(GroupKFold(n_splits=N_FOLDS).split(X, y, groups))
    jobs = options.jobs if options is not None and options.jobs else 1
    composition, oof = held_out_forest(X, y, folds, seed, jobs)
    model = GapModel(composition, list(feats.columns), preset, COMPOSITION_MODEL)
    model.cv_mae = {COMPOSITION_MODEL: float(np.mean(np.abs(oof - y)))}
    model.n_train = len(train)
    n = _refractive_of(train)
    has_n = np.isfinite(n)
    if has_n.sum() < 2 * N_FOLDS or len(set(groups[has_n])) < N_FOLDS:
        return model
    # rows with n: the same folds, restricted to those rows
    folds_n = [(tr[has_n[tr]], te[has_n[te]]) for tr, te in folds]
    folds_n = [(tr, te) for tr, te in folds_n if len(tr) and len(te)]  # a fold without n
    model.with_n_forest, oof_n = held_out_forest(with_n_features(X, n), y, folds_n, seed, jobs)
    model.refractive = fit_refractive(n[has_n], y[has_n], groups[has_n])
    relation = RELATIONS[model.refractive.relation]
    ref_oof = np.full_like(y, np.nan)
    for tr, te in folds_n:
        b, a = np.polyfit(relation(n[tr]), y[tr], 1)
        ref_oof[te] = np.clip(a + b * relation(n[te]), 0, None)
    scores = {
        COMPOSITION_MODEL: np.mean(np.abs(oof[has_n] - y[has_n])),
        COMPOSITION_N_MODEL: np.mean(np.abs(oof_n[has_n] - y[has_n])),
        REFRACTIVE: np.mean(np.abs(ref_oof[has_n] - y[has_n])),
    }
    model.cv_mae.update({f"{k}_rows_with_n": float(v) for k, v in scores.items()})
    model.with_n = min(scores, key=scores.__getitem__)
    return model


def estimate_gaps(
    model: GapModel,
    records: pd.DataFrame,
    options: FeatureOptions | None = None,
    features: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per record (same index): ``band_gap``, ``band_gap_method``, ``band_gap_sd`` (eV; 0 for a
    source value). The source's gap wins; a row that cannot be estimated keeps NaN and says
    why in the method."""
    if S.BAND_GAP in records:
        given = pd.to_numeric(records[S.BAND_GAP], errors="coerce")
    else:
        given = pd.Series(np.nan, index=records.index)
    out = pd.DataFrame(
        {S.BAND_GAP: given.astype(float), S.BAND_GAP_METHOD: SOURCE, S.BAND_GAP_SD: 0.0},
        index=records.index,
    )
    todo = given.isna().to_numpy()
    if not todo.any():
        return out
    rows = records.loc[todo]
    if features is not None:
        feats = features.reindex(rows[S.ID].astype(str))
    else:
        feats = gap_features(rows, model.preset, options)
    feats = feats.reindex(columns=model.columns)
    ok = feats.notna().any(axis=1).to_numpy()
    mean = np.full(len(rows), np.nan)
    sd = np.full(len(rows), np.nan)
    if ok.any():
        mean[ok], sd[ok] = model.composition.predict(feats.to_numpy(float)[ok])
    method = np.where(ok, COMPOSITION_MODEL, "none: composition not featurized").astype(object)
    n = _refractive_of(rows)
    use_n = np.isfinite(n) & (n > 1.0)
    if model.with_n == REFRACTIVE and model.refractive is not None:
        mean[use_n] = model.refractive.predict(n[use_n])
        sd[use_n], method[use_n] = model.refractive.sd, REFRACTIVE
    elif model.with_n == COMPOSITION_N_MODEL and model.with_n_forest is not None:
        use_n &= ok
        if use_n.any():
            Xn = with_n_features(feats.to_numpy(float)[use_n], n[use_n])
            mean[use_n], sd[use_n] = model.with_n_forest.predict(Xn)
            method[use_n] = COMPOSITION_N_MODEL
    out.loc[todo, S.BAND_GAP] = mean
    out.loc[todo, S.BAND_GAP_SD] = sd
    out.loc[todo, S.BAND_GAP_METHOD] = method
    return out


def p_band_gap_above(gaps: pd.DataFrame, threshold: float) -> pd.Series:
    """The probability that each row's gap is ≥ ``threshold`` eV: from a normal with the row's
    estimate and sd; 1 or 0 for a source value (sd 0); NaN where there is no gap."""
    p = p_gap_at_least(
        gaps[S.BAND_GAP].to_numpy(float), gaps[S.BAND_GAP_SD].to_numpy(float), threshold
    )
    return pd.Series(p, index=gaps.index, name=f"p_band_gap_above_{threshold:g}")
