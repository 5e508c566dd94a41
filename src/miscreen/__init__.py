"""miscreen: screen crystal structures for solid Li-ion electrolytes.

Data flow (one package per stage):
fetch -> store -> featurize -> train -> screen -> report
"""

__version__ = "0.1.0"
