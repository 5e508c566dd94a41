"""Checks of a loaded estimator's fitted parts, which skops builds from the file as given.

scikit-learn follows a tree's node indices unchecked, so a crafted ``Tree`` could make it
read out of bounds or loop (skops warns of this): trees whose children point outside the
tree or backwards, or that split on features the model has not, are refused. Neighbour
indexes are rebuilt from their own training rows instead of trusting stored index arrays.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np


def _parts(obj: Any, seen: set[int] | None = None) -> Iterator[Any]:
    """Every object reachable from ``obj`` through scikit-learn/miscreen objects' attributes
    and lists, tuples and dicts (each once)."""
    seen = set() if seen is None else seen
    stack = [obj]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, np.ndarray) and item.dtype == object:
            stack.extend(item.ravel().tolist())
        elif type(item).__module__.startswith(("sklearn.", "miscreen.")) and hasattr(
            item, "__dict__"
        ):
            stack.extend(vars(item).values())


def check_fitted_parts(estimator: Any) -> None:
    """Refuse trees whose node indices point outside the tree or backwards, or at features
    the model's input does not have (scikit-learn follows them unchecked), and rebuild
    neighbour indexes from their training rows."""
    from sklearn.ensemble import (
        ExtraTreesRegressor,
        HistGradientBoostingRegressor,
        RandomForestRegressor,
    )
    from sklearn.neighbors import NearestNeighbors
    from sklearn.tree import BaseDecisionTree

    for part in list(_parts(estimator)):
        if isinstance(part, ExtraTreesRegressor | RandomForestRegressor):
            for member in getattr(part, "estimators_", []):
                if not isinstance(member, BaseDecisionTree):
                    raise TypeError(f"a forest holds a {type(member).__name__}")
                _check_tree(member.tree_, int(part.n_features_in_))
        elif isinstance(part, BaseDecisionTree) and hasattr(part, "tree_"):
            _check_tree(part.tree_, int(part.n_features_in_))
        elif isinstance(part, HistGradientBoostingRegressor):
            for predictors in getattr(part, "_predictors", []):
                for predictor in predictors:
                    _check_predictor(predictor, int(part.n_features_in_))
        elif isinstance(part, NearestNeighbors) and hasattr(part, "_fit_X"):
            part.fit(part._fit_X)


def _check_tree(tree: Any, width: int) -> None:
    n = int(tree.node_count)
    left, right, feature = tree.children_left, tree.children_right, tree.feature
    if not (len(left) == len(right) == len(feature) == n and n >= 1):
        raise ValueError(f"tree arrays disagree with its node count {n}")
    if int(tree.n_features) != width:
        raise ValueError(f"a tree expects {tree.n_features} features, its model {width}")
    inner = left != -1
    if not np.array_equal(inner, right != -1):
        raise ValueError("a tree node has exactly one child")
    _check_children(np.arange(n)[inner], left[inner], right[inner], n, "tree")
    if ((feature[inner] < 0) | (feature[inner] >= width)).any():
        raise ValueError("a tree node splits on a feature the model does not have")


def _check_predictor(predictor: Any, width: int) -> None:
    nodes = predictor.nodes
    n = len(nodes)
    if n < 1:
        raise ValueError("a boosting tree has no nodes")
    inner = ~nodes["is_leaf"].astype(bool)
    left, right = nodes["left"].astype(np.int64), nodes["right"].astype(np.int64)
    _check_children(np.arange(n)[inner], left[inner], right[inner], n, "boosting tree")
    if nodes["is_categorical"].astype(bool).any():
        raise ValueError("a boosting tree splits on categories, which miscreen never uses")
    feature = nodes["feature_idx"][inner].astype(np.int64)
    if ((feature < 0) | (feature >= width)).any():
        raise ValueError("a boosting tree node splits on a feature the model does not have")


def _check_children(idx: np.ndarray, left: np.ndarray, right: np.ndarray, n: int, what: str):
    """Children come after their parent and inside the tree (so every walk ends at a leaf)."""
    if ((left <= idx) | (left >= n) | (right <= idx) | (right >= n)).any():
        raise ValueError(f"a {what} node points outside the tree or backwards")
