"""Shared column helpers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from miscreen import schema as S


def test_records_are_what_to_dict_gives():
    frame = pd.DataFrame(
        {
            "f": [1.5, np.nan, -0.0],
            "i": pd.array([1, pd.NA, 3], dtype="Int64"),
            "n": np.array([1, 2, 3], dtype=np.int64),
            "b": [True, False, True],
            "o": ["x", None, pd.NA],
            "s": pd.array(["a", pd.NA, "c"], dtype="string"),
        }
    )
    got, want = S.records(frame), frame.to_dict("records")
    assert len(got) == len(want) == 3
    for g, w in zip(got, want, strict=True):
        assert list(g) == list(w)
        for k in w:
            assert type(g[k]) is type(w[k]), k
            assert g[k] is w[k] or g[k] == w[k] or (pd.isna(g[k]) and pd.isna(w[k])), k
    assert S.records(pd.DataFrame(index=range(2))) == [{}, {}]
    assert S.records(frame.iloc[:0]) == []
