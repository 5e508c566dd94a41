"""Band gap for every candidate: the source's value where it gives one, else an estimate
with its method and a standard deviation.

Two estimates, both fitted on rows with a known gap (the snapshots' Materials Project PBE
gaps):

- ``composition_model``: extra trees on the ``composition`` feature preset; the per-row sd is
  the spread of the trees, scaled so that held-out residuals (chemical-system-grouped folds)
  fall within one sd as often as a normal distribution says (68 %).
- ``refractive_index``: an empirical relation of the gap to the refractive index ``n``
  (Moss Eg·n⁴ = 95 eV, Ravindra n = 4.084 − 0.62·Eg, Hervé–Vandamme
  n² = 1 + (13.6/(Eg + 3.4))²), each turned into a gap and calibrated linearly on the
  training rows with both; the relation with the lowest held-out error is kept, and its sd
  is the held-out root-mean-square error.

Where a row has ``n``, the refractive estimate, the composition estimate or their
inverse-variance mean (``combined``) serves it, whichever had the lowest held-out error at
fit time. Choices are made on held-out training rows only, never on screening results.

The training gaps are PBE gaps of non-metals (the snapshots hold no gap below 0.1 eV), so an
estimate inherits PBE's underestimate and cannot say "metal"; :func:`p_band_gap_above` turns
the sd into the probability that the gap reaches a threshold, so a caller can keep a row
whose gap is below the threshold only by chance (e.g. remove when that probability < 0.1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.ensemble import ExtraTreesRegressor
from sklearn.impute import SimpleImputer
from sklearn.model_selection import GroupKFold

from miscreen import schema as S
from miscreen.featurize import FeatureOptions, featurize_records
from miscreen.train.splits import chemsys_groups

REFRACTIVE_INDEX = "refractive_index_n"  # the matbench-dielectric column
SOURCE = "source"
COMPOSITION_MODEL = "composition_model"
REFRACTIVE = "refractive_index"
COMBINED = "combined"
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


@dataclass
class GapModel:
    """A fitted band-gap estimator (see the module docstring); picklable."""

    forest: ExtraTreesRegressor
    imputer: SimpleImputer
    columns: list[str]
    preset: str
    sd_scale: float
    refractive: RefractiveFit | None
    with_n: str  # the estimate for rows that carry n: COMPOSITION_MODEL, REFRACTIVE or COMBINED
    cv_mae: dict[str, float] = field(default_factory=dict)
    n_train: int = 0


def _forest(seed: int) -> ExtraTreesRegressor:
    return ExtraTreesRegressor(
        n_estimators=200, min_samples_leaf=2, max_features=0.3, n_jobs=1, random_state=seed
    )


def _forest_predict(
    forest: ExtraTreesRegressor, imputer: SimpleImputer, X: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(mean, spread across trees) per row."""
    Xi = imputer.transform(X)
    per_tree = np.stack([t.predict(Xi) for t in forest.estimators_])
    return per_tree.mean(axis=0), per_tree.std(axis=0)


def _fit_forest(
    X: np.ndarray, y: np.ndarray, seed: int
) -> tuple[ExtraTreesRegressor, SimpleImputer]:
    imputer = SimpleImputer(strategy="median", keep_empty_features=True).fit(X)
    return _forest(seed).fit(imputer.transform(X), y), imputer


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


def refractive_index_by_match(records: pd.DataFrame, dielectric: pd.DataFrame) -> pd.Series:
    """Per record, the ``refractive_index_n`` of a ``dielectric`` row with the same reduced
    formula and space group (their median where several match; NaN where none does)."""
    keyed = dielectric.assign(_n=_refractive_of(dielectric)).dropna(subset=["_n"])
    table = keyed.groupby([S.FORMULA, S.SPACEGROUP])["_n"].median()
    spacegroups = pd.to_numeric(records[S.SPACEGROUP], errors="coerce")
    keys = zip(records[S.FORMULA], spacegroups, strict=True)
    return pd.Series([table.get(k, np.nan) for k in keys], index=records.index, dtype=float)


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
    oof, spread = np.empty_like(y), np.empty_like(y)
    for tr, te in folds:
        forest, imputer = _fit_forest(X[tr], y[tr], seed)
        oof[te], spread[te] = _forest_predict(forest, imputer, X[te])
    oof = np.clip(oof, 0, None)
    z = np.abs(oof - y) / np.maximum(spread, 1e-6)
    sd_scale = float(np.quantile(z, norm.cdf(1) - norm.cdf(-1)))
    cv_mae = {COMPOSITION_MODEL: float(np.mean(np.abs(oof - y)))}
    n = _refractive_of(train)
    has_n = np.isfinite(n)
    refractive, with_n = None, COMPOSITION_MODEL
    if has_n.sum() >= 2 * N_FOLDS and len(set(groups[has_n])) >= N_FOLDS:
        refractive = fit_refractive(n[has_n], y[has_n], groups[has_n])
        # the held-out refractive estimate on the same folds as the forest's
        ref_oof = np.full_like(y, np.nan)
        f = RELATIONS[refractive.relation]
        for tr, te in folds:
            tr_n, te_n = tr[has_n[tr]], te[has_n[te]]
            b, a = np.polyfit(f(n[tr_n]), y[tr_n], 1)
            ref_oof[te_n] = np.clip(a + b * f(n[te_n]), 0, None)
        sd_model = np.maximum(sd_scale * spread, MIN_SD)
        mixed = _inverse_variance(oof, sd_model, ref_oof, refractive.sd)[0]
        scores = {
            COMPOSITION_MODEL: np.mean(np.abs(oof[has_n] - y[has_n])),
            REFRACTIVE: np.mean(np.abs(ref_oof[has_n] - y[has_n])),
            COMBINED: np.mean(np.abs(mixed[has_n] - y[has_n])),
        }
        cv_mae.update({f"{k}_rows_with_n": float(v) for k, v in scores.items()})
        with_n = min(scores, key=scores.__getitem__)
    forest, imputer = _fit_forest(X, y, seed)
    return GapModel(
        forest=forest,
        imputer=imputer,
        columns=list(feats.columns),
        preset=preset,
        sd_scale=sd_scale,
        refractive=refractive,
        with_n=with_n,
        cv_mae=cv_mae,
        n_train=len(train),
    )


def _inverse_variance(
    m1: np.ndarray, s1: np.ndarray, m2: np.ndarray, s2: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    w1, w2 = 1 / np.square(s1), 1 / np.square(s2)
    return (w1 * m1 + w2 * m2) / (w1 + w2), np.sqrt(1 / (w1 + w2))


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
        m, spread = _forest_predict(model.forest, model.imputer, feats.to_numpy(float)[ok])
        mean[ok] = np.clip(m, 0, None)
        sd[ok] = np.maximum(model.sd_scale * spread, MIN_SD)
    method = np.where(ok, COMPOSITION_MODEL, "none: composition not featurized")
    n = _refractive_of(rows)
    has_n = np.isfinite(n) & (n > 1.0)
    if model.refractive is not None and model.with_n != COMPOSITION_MODEL and has_n.any():
        ref = model.refractive.predict(n[has_n])
        if model.with_n == COMBINED:
            both = ok[has_n]
            mix, mix_sd = _inverse_variance(mean[has_n], sd[has_n], ref, model.refractive.sd)
            ref_mean = np.where(both, mix, ref)
            ref_sd = np.where(both, mix_sd, model.refractive.sd)
            label = np.where(both, COMBINED, REFRACTIVE)
        else:
            ref_mean, ref_sd, label = ref, np.full(len(ref), model.refractive.sd), REFRACTIVE
        mean[has_n], sd[has_n], method[has_n] = ref_mean, ref_sd, label
    out.loc[todo, S.BAND_GAP] = mean
    out.loc[todo, S.BAND_GAP_SD] = sd
    out.loc[todo, S.BAND_GAP_METHOD] = method
    return out


def p_band_gap_above(gaps: pd.DataFrame, threshold: float) -> pd.Series:
    """The probability that each row's gap is ≥ ``threshold`` eV: from a normal with the row's
    estimate and sd; 1 or 0 for a source value (sd 0); NaN where there is no gap."""
    gap = gaps[S.BAND_GAP].astype(float).to_numpy()
    sd = gaps[S.BAND_GAP_SD].astype(float).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(sd > 0, norm.sf(threshold, loc=gap, scale=np.where(sd > 0, sd, 1.0)), 0.0)
    p = np.where(sd > 0, p, (gap >= threshold).astype(float))
    p = np.where(np.isfinite(gap), p, np.nan)
    return pd.Series(p, index=gaps.index, name=f"p_band_gap_above_{threshold:g}")


@lru_cache(maxsize=2)
def cached_gap_model(training: tuple[tuple[str, str, float, float | None], ...]) -> GapModel:
    """:func:`fit_gap_model` once per process for the same training rows, the
    (id, composition, band_gap, n or None) tuples of :func:`training_rows`."""
    cols = [S.ID, S.COMPOSITION, S.BAND_GAP, REFRACTIVE_INDEX]
    frame = pd.DataFrame(list(training), columns=cols)
    frame[S.SOURCE] = "gap training"
    return fit_gap_model(frame)


def training_rows(records: pd.DataFrame) -> tuple[tuple[str, str, float, float | None], ...]:
    """The hashable (id, composition, band_gap, n or None) rows of ``records`` with a known
    gap (None, not NaN, for a missing n: NaN never equals itself, so a cache would miss)."""
    gap = pd.to_numeric(records[S.BAND_GAP], errors="coerce")
    known = records[gap.notna()]
    n = _refractive_of(known)
    return tuple(
        (str(i), str(c), float(g), float(x) if math.isfinite(x) else None)
        for i, c, g, x in zip(known[S.ID], known[S.COMPOSITION], gap[gap.notna()], n, strict=True)
    )
