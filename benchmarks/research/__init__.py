"""Research code the benchmarks use and the package does not ship.

- ``embeddings``: element-embedding featurizers (MEGNet, mat2vec) and
- ``anion_framework``: anion-framework descriptors, both tried by
  ``benchmarks/model_research.py`` and left out of every preset (README, "Models and
  evaluation");
- ``simulate``: simulated sequential-learning campaigns for ``benchmarks/sequential.py``.

A benchmark run as ``.venv/bin/python benchmarks/x.py`` puts the repository root on
``sys.path`` and imports ``benchmarks.research.<module>``; the tests import it the same way.
Nothing under ``src/`` imports from here.
"""
