"""The configuration of a quick test run: composition preset, 40 trees, 3 folds."""

from __future__ import annotations

from pathlib import Path


def small_config(root: Path, name: str, candidates: str, screen: str, data: str = "") -> str:
    """YAML of a run named ``name`` writing under ``root``; ``candidates`` is the indented
    list under ``candidates:``, ``screen`` and ``data`` are flow mappings (data optional)."""
    lines = [
        f"run_name: {name}",
        "seed: 0",
        f"results_dir: {root}/results",
        f"models_dir: {root}/models",
        *([f"data: {data}"] if data else []),
        "features: {preset: composition}",
        "model: {kind: extra_trees, n_estimators: 40, cv_folds: 3}",
        "candidates:",
        candidates.strip("\n"),
        f"screen: {screen}",
    ]
    return "\n".join(lines) + "\n"
