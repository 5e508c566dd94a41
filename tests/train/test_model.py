"""The conformal model: estimator contract, intervals, domain flag, and safe persistence."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from miscreen.catalog import ModelFolder
from miscreen.featurize import feature_schema
from miscreen.train.estimators import ConformalRegressor, MedianExtraTreesRegressor, make_regressor
from miscreen.train.persist import ModelLoadError, TrainedModel, load_model, save_model


@parametrize_with_checks(
    [
        ConformalRegressor(make_regressor("extra_trees", 10), n_folds=3),
        MedianExtraTreesRegressor(n_estimators=10),
    ]
)
def test_sklearn_contract(estimator, check):
    check(estimator)


def _data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    noise = rng.normal(scale=0.2 + np.abs(X[:, 1]), size=n)  # heteroscedastic
    return X, 2 * X[:, 0] + noise


def test_intervals_cover_close_to_nominal_on_fresh_data():
    X, y = _data()
    Xt, yt = _data(2000, seed=1)
    model = ConformalRegressor(make_regressor("random_forest", 100), n_folds=5).fit(X, y)
    for alpha in (0.8, 0.95):
        _, lo, hi = model.predict_interval(Xt, alpha)
        cover = np.mean((yt >= lo) & (yt <= hi))
        assert abs(cover - alpha) < 0.07, (alpha, cover)


def test_p_fast_is_calibrated_on_fresh_data_and_agrees_with_the_interval():
    """The probability of reaching a threshold comes from the same conformal distribution
    as the intervals: on fresh data the events happen as often as predicted, and at the
    interval's lower (upper) bound it is about 0.9 (0.1) for an 80 % interval."""
    X, y = _data()
    Xt, yt = _data(2000, seed=1)
    model = ConformalRegressor(make_regressor("random_forest", 100), n_folds=5).fit(X, y)
    for threshold in (-1.0, 0.0, 1.5):
        p = model.prob_above(Xt, threshold)
        assert abs(p.mean() - np.mean(yt >= threshold)) < 0.05, threshold
        high, low = p > 0.7, p < 0.3  # it sorts: the likely rows reach it far more often
        assert np.mean(yt[high] >= threshold) > 0.8 > 0.2 > np.mean(yt[low] >= threshold)
    _, lo, hi = model.predict_interval(Xt, 0.8)
    p_lo = np.array([model.prob_above(Xt[i : i + 1], lo[i])[0] for i in range(50)])
    p_hi = np.array([model.prob_above(Xt[i : i + 1], hi[i])[0] for i in range(50)])
    assert np.all(np.abs(p_lo - 0.9) < 0.06) and np.all(np.abs(p_hi - 0.1) < 0.06)


def test_p_fast_of_a_model_saved_without_signed_residuals_is_symmetric():
    """An older model keeps only absolute residuals: each counts with both signs, so the
    prediction itself is reached with probability one half."""
    X, y = _data()
    model = ConformalRegressor(make_regressor("extra_trees", 20), n_folds=3).fit(X, y)
    del model.signed_scores_
    pred = model.predict(X[:10])
    np.testing.assert_allclose(model.prob_above(X[:10], pred + 1e-9), 0.5, atol=0.01)
    assert np.all(model.prob_above(X[:10], pred + 100) == 0)


def test_out_of_domain_flags_far_points():
    X, y = _data()
    model = ConformalRegressor(make_regressor("extra_trees", 20), n_folds=3).fit(X, y)
    _, outside = model.domain_distance(np.vstack([X[:5], X[:5] + 50]))
    assert not outside[:5].any() and outside[5:].all()


def test_domain_distance_does_not_depend_on_the_batch():
    """A row's distance is the same whether it is asked alone or among many (chunks and
    shards of one run give byte-identical tables), and zero for a training row."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 284)) * rng.lognormal(size=284)  # wide, like the features
    y = X[:, 0] + rng.normal(size=300)
    model = ConformalRegressor(make_regressor("extra_trees", 10), n_folds=3).fit(X, y)
    queries = np.vstack([X[:3], X[:40] + rng.normal(scale=0.3, size=(40, 284))])
    together, _ = model.domain_distance(queries)
    alone = np.concatenate([model.domain_distance(q[None, :])[0] for q in queries])
    assert np.array_equal(together, alone)
    assert np.all(together[:3] == 0)


def test_median_forest_predicts_the_median_of_its_trees():
    X, y = _data(100)
    fresh, _ = _data(5, seed=3)  # on training rows every extra tree is exact
    model = MedianExtraTreesRegressor(n_estimators=11, random_state=0).fit(X, y)
    per_tree = np.stack([t.predict(fresh) for t in model.estimators_])
    np.testing.assert_allclose(model.predict(fresh), np.median(per_tree, axis=0))
    assert not np.allclose(model.predict(fresh), per_tree.mean(axis=0))


def test_unknown_kind_is_an_error():
    with pytest.raises(ValueError, match="unknown model kind 'svm'"):
        make_regressor("svm")  # type: ignore[arg-type]


def test_saved_model_is_verified_before_loading(tmp_path):
    schema = feature_schema("composition")  # a model of today's features (others are refused)
    X, y = _data(60)
    X = np.tile(X, (1, -(-len(schema.names) // 4)))[:, : len(schema.names)]
    model = ConformalRegressor(make_regressor("extra_trees", 10), n_folds=3).fit(X, y)
    folder = ModelFolder(tmp_path / "m")
    save_model(folder, TrainedModel(model, schema, {"model": "m", "note": "test"}))
    loaded = load_model(folder)
    np.testing.assert_allclose(loaded.estimator.predict(X), model.predict(X))
    assert loaded.schema == schema
    with open(folder.estimator, "ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(ModelLoadError, match=r"does not match.*Refusing to load it"):
        load_model(folder)


def test_missing_model_dir_is_clear(tmp_path):
    with pytest.raises(ModelLoadError, match="not a miscreen model directory"):
        load_model(ModelFolder(tmp_path))


def test_tuning_picks_the_grid_point_with_the_lowest_grouped_cv_error():
    from miscreen.train.estimators import cv_scheme, cv_splits
    from miscreen.train.fit import tune

    X, y = _data(200)
    groups = np.repeat(np.arange(40), 5)  # 40 "publications" of 5 rows
    grid = {"model__max_iter": [1, 100]}  # one boosting step cannot fit y; a hundred can
    splits, scheme = cv_splits(X, y, groups, 4, 0), cv_scheme(groups, 4)
    result = tune(make_regressor("hist_gradient_boosting"), grid, X, y, splits, scheme)
    assert result["best_params"] == {"model__max_iter": 100}
    maes = {c["params"]["model__max_iter"]: c["cv_mae"] for c in result["candidates"]}
    assert maes[100] < maes[1] and result["best_cv_mae"] == pytest.approx(maes[100])


def test_fit_records_and_applies_the_tuned_hyperparameters():
    import pandas as pd

    from miscreen import schema as S
    from miscreen.config import ModelConfig
    from miscreen.train.estimators import SEARCH_GRIDS
    from miscreen.train.fit import fit_conformal

    X, y = _data(120)
    features = pd.DataFrame(X, columns=[f"f{i}" for i in range(4)])
    labels = pd.DataFrame({S.TARGET: y, S.DOI: [f"doi-{i // 4}" for i in range(120)]})
    cfg = ModelConfig(kind="extra_trees", n_estimators=20, cv_folds=3)
    model, cv = fit_conformal(features, labels, cfg, seed=0)
    chosen = cv["hyperparameters"]["best_params"]
    assert set(chosen) == set(SEARCH_GRIDS["extra_trees"])
    assert len(cv["hyperparameters"]["candidates"]) == len(
        SEARCH_GRIDS["extra_trees"]["model__max_features"]
    )
    assert model.estimator_.get_params()["model__max_features"] == chosen["model__max_features"]
    _, untuned = fit_conformal(features, labels, cfg.model_copy(update={"tune": False}), seed=0)
    assert untuned["hyperparameters"] == {"searched": False}


def test_ensemble_is_trees_and_boosting_and_fits_small_tables():
    """No composition-neighbour member (it copied the nearest measured labels onto new
    chemistry), so 12 rows in 3 folds fit; a config still naming its hyperparameter gets an
    error that lists the known ones."""
    import pandas as pd

    from miscreen import schema as S
    from miscreen.config import ModelConfig
    from miscreen.train.fit import fit_conformal

    assert [name for name, _ in make_regressor("ensemble", 10)[-1].estimators] == ["et", "hgb"]
    X, y = _data(12)
    features = pd.DataFrame(X, columns=["comp:Li", "comp:S", "comp:P", "cell:volume"])
    labels = pd.DataFrame({S.TARGET: y, S.DOI: [f"doi-{i}" for i in range(12)]})
    cfg = ModelConfig(kind="ensemble", n_estimators=10, cv_folds=3, tune=False)
    model, cv = fit_conformal(features, labels, cfg, seed=0)
    assert np.isfinite(model.predict(X)).all() and cv["cv_mae"] > 0
    old = cfg.model_copy(
        update={"hyperparameters": {"model__knn__kneighborsregressor__n_neighbors": 5}}
    )
    with pytest.raises(ValueError, match=r"model__knn.*not parameters.*model__et__max_features"):
        fit_conformal(features, labels, old, seed=0)


@pytest.mark.parametrize(("today", "old"), [("cell", "composition"), ("composition", "formula")])
def test_a_model_saved_under_an_old_preset_name_says_so(tmp_path, today, old):
    """Issue 21 named each preset like its model (formula -> composition, composition ->
    cell): a folder from before says why it must be retrained."""
    import json

    schema = feature_schema(today)
    X, y = _data(60)
    X = np.tile(X, (1, -(-len(schema.names) // 4)))[:, : len(schema.names)]
    model = ConformalRegressor(make_regressor("extra_trees", 10), n_folds=3).fit(X, y)
    folder = ModelFolder(tmp_path / "m")
    save_model(folder, TrainedModel(model, schema, {"model": "m"}))
    assert load_model(folder).schema.preset == today  # today's names load
    meta = json.loads(folder.meta.read_text())
    meta["feature_schema"]["preset"] = old
    folder.meta.write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match=f"preset '{old}', a name from before"):
        load_model(folder)


def test_analogues_are_the_training_rows_the_forest_rests_on():
    """The weights of the training rows each prediction rests on sum to one and rebuild the
    extra trees' mean; an older model without training leaves gives none."""
    from sklearn.ensemble import ExtraTreesRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    X, y = _data(120)
    pipe = Pipeline(
        [("impute", SimpleImputer()), ("model", ExtraTreesRegressor(30, random_state=0))]
    )
    model = ConformalRegressor(pipe, n_folds=3).fit(X, y)
    fresh, _ = _data(8, seed=5)
    positions, weights = model.analogues(fresh, k=len(y))
    assert np.allclose(weights.sum(axis=1), 1.0)
    rebuilt = np.array([w @ y[p] for p, w in zip(positions, weights, strict=True)])
    np.testing.assert_allclose(rebuilt, model.estimator_[-1].predict(fresh), atol=1e-9)
    top, top_w = model.analogues(fresh, k=3)
    assert top.shape == (8, 3) and np.all(np.diff(top_w, axis=1) <= 0)
    del model.train_leaves_
    assert model.analogues(fresh)[0].shape == (8, 0)


def test_rests_on_names_training_rows_and_ignores_a_malformed_table():
    import pandas as pd

    from miscreen.screen.predict import rests_on

    X, y = _data(60)
    model = ConformalRegressor(make_regressor("extra_trees", 20), n_folds=3).fit(X, y)
    table = [[f"r{i}", f"Li{i}X", float(v)] for i, v in enumerate(y)]
    trained = TrainedModel(model, feature_schema("composition"), {"training_table": table})
    frame = pd.DataFrame(X[:2])
    text = rests_on(trained, frame)
    assert all(t.count("%") == 3 and "(r" in t for t in text)
    trained.meta["training_table"] = [["r0", "LiX", "not a number"]]
    assert rests_on(trained, frame) == ["", ""]
