"""A model per input kind: each row is served only by a model whose features it has, the
choice among those made by out-of-fold error on training rows of the same kind."""

from __future__ import annotations

import numpy as np
import pandas as pd

from miscreen import schema as S
from miscreen.train.routing import (
    CELL_ROWS,
    COMPOSITION_ROWS,
    STRUCTURE_ROWS,
    choose_routing,
    model_plan,
    row_kinds,
)


def test_row_kinds_follow_what_each_row_has():
    records = pd.DataFrame(
        {
            S.ID: ["s", "c", "f", "a"],
            S.STRUCTURE: ['{"sites": []}', None, None, ""],
            S.SPACEGROUP: [225, 62, np.nan, np.nan],
            "a": [4.0, np.nan, np.nan, 5.0],
        }
    )
    assert row_kinds(records).tolist() == [STRUCTURE_ROWS, CELL_ROWS, COMPOSITION_ROWS, CELL_ROWS]


def test_plan_has_a_model_per_kind_present():
    kinds = pd.Series([STRUCTURE_ROWS, CELL_ROWS])
    assert model_plan("full", kinds) == {
        "composition": "composition",
        "cell": "cell",
        "structure": "full",
    }
    assert model_plan("full", pd.Series([COMPOSITION_ROWS])) == {"composition": "composition"}
    assert "structure" not in model_plan("cell", kinds)


def test_routing_never_gives_a_row_a_model_it_lacks_features_for():
    ids = ["s1", "s2", "c1", "c2"]
    kinds = pd.Series([STRUCTURE_ROWS, STRUCTURE_ROWS, CELL_ROWS, CELL_ROWS], index=ids)
    oof = {
        "composition": pd.Series([2.0, 2.0, 1.0, 1.0], index=ids),
        "cell": pd.Series([1.5, 1.5, 0.5, 0.5], index=ids),
        "structure": pd.Series([1.0, 1.0, 0.1, 0.1], index=ids),  # best everywhere
    }
    routing = choose_routing(oof, kinds)
    assert routing[STRUCTURE_ROWS]["model"] == "structure"
    assert routing[CELL_ROWS]["model"] == "cell"  # the structure model needs positions
    assert routing[COMPOSITION_ROWS]["model"] == "composition"  # no training rows: its own
    assert routing[COMPOSITION_ROWS]["rows"] == 0
    assert routing[CELL_ROWS]["cv_mae"] == {"cell": 0.5, "composition": 1.0}


def test_too_few_featurized_rows_is_a_user_error_naming_a_failure():
    """Issue 27 point 9: rows lost to featurization ended in scikit-learn's
    'n_splits=2 greater than n_samples=0'."""
    import pytest

    from miscreen.config import ModelConfig
    from miscreen.errors import UserError
    from miscreen.featurize import FeatureOptions
    from miscreen.fetch.obelix import load_obelix
    from miscreen.train.routing import fit_models

    records, _ = load_obelix("train", with_structures=False)
    records = records.head(6).copy()
    records[S.COMPOSITION] = ["Li2O", "Xx2", "Qq3", "Zz", "Jj2O", "Yy9"]
    with pytest.raises(UserError, match=r"only 1 of 6 labelled rows could be featurized") as err:
        fit_models(
            records,
            preset="composition",
            model=ModelConfig(kind="extra_trees", n_estimators=10, cv_folds=3, tune=False),
            seed=0,
            censored="floor",
            features=FeatureOptions(jobs=1, cache_dir=None, time_limit=None),
        )
    assert "model.cv_folds" in str(err.value) and "Xx2" in str(err.value)
