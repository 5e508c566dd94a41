"""Tests of the research scripts (benchmarks/ and benchmarks/research/)."""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType


def import_benchmark(name: str) -> ModuleType:
    """``benchmarks.<name>``, imported without keeping the environment changes (mirror,
    thread counts, ``sys.path``) that benchmark scripts make at import time."""
    environ, path = dict(os.environ), list(sys.path)
    try:
        return importlib.import_module(f"benchmarks.{name}")
    finally:
        os.environ.clear()
        os.environ.update(environ)
        sys.path[:] = path
