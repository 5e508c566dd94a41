"""A Dask worker preload: the libraries that screening a chunk imports, imported when a
worker starts rather than inside its first chunk.

Start workers with ``dask worker SCHEDULER --preload miscreen.batch.preload`` (with
dask-jobqueue: ``worker_extra_args: ["--preload", "miscreen.batch.preload"]`` under
``batch.dask.jobqueue``). Without it, each worker's first chunk also imports scikit-learn,
skops, matminer, pymatgen's analysis modules and pyarrow's Parquet reader (about 0.7 s of
CPU here): time that every worker spends once, which more workers do not shorten.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def warm_imports() -> None:
    """Import what :func:`miscreen.batch.backends.screen_chunk` imports on first use."""
    import pyarrow.parquet  # noqa: F401  (a chunk's rows from the structure store)
    import sklearn.ensemble
    import sklearn.neighbors  # noqa: F401
    from pymatgen.analysis import hhi, structure_matcher  # noqa: F401  (criteria, known matches)

    from miscreen.featurize import composition
    from miscreen.train.trusted_types import skops_io

    skops_io()
    composition.labels()  # builds matminer's composition featurizers once per process


def dask_setup(worker: Any = None) -> None:
    """Dask's preload hook (``--preload miscreen.batch.preload``)."""
    warm_imports()
    log.info("miscreen: screening libraries imported on worker %s", getattr(worker, "name", ""))
