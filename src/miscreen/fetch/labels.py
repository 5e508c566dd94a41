"""Measured conductivities: parsing and the explicit policy for censored values.

OBELiX reports 37 conductivities only as upper bounds (``<1E-10``, ``<1E-8``). Upstream maps
them to 1e-15 S/cm. The policy is chosen in the config (``data.censored``):

- ``floor`` (default): log10 sigma = -15, as upstream does, so metrics are comparable with
  the published OBELiX baselines;
- ``bound``: use the bound itself (log10 of 1e-10 -> -10), the most conservative reading;
- ``drop``: leave censored rows out of training (they are still evaluated, at -15).

Every labelled table keeps ``censored`` (bool) and ``censor_bound`` so nothing is silent.
"""

from __future__ import annotations

import math
from typing import Literal

import pandas as pd

from miscreen.schema import CENSORED, TARGET

CensoredPolicy = Literal["floor", "bound", "drop"]
OBELIX_FLOOR_LOG10 = -15.0


def parse_sigma(raw: object) -> tuple[float, bool, float]:
    """Parse one conductivity cell -> (log10 sigma, censored, log10 bound or NaN).

    Censored values come back with the upstream floor (-15); ``apply_censoring`` applies
    the configured policy. Raises ``ValueError`` for anything that is not a positive number.
    """
    text = str(raw).strip()
    censored = text.startswith("<")
    number = text[1:].strip() if censored else text
    value = float(number)
    if not value > 0 or math.isinf(value):
        raise ValueError(f"conductivity must be a positive number in S/cm, got {text!r}")
    if censored:
        return OBELIX_FLOOR_LOG10, True, math.log10(value)
    return math.log10(value), False, math.nan


def apply_censoring(df: pd.DataFrame, policy: CensoredPolicy) -> pd.DataFrame:
    """Return the training rows under ``policy`` (see module docstring)."""
    if CENSORED not in df.columns or not df[CENSORED].any():
        return df
    if policy == "floor":
        return df
    if policy == "drop":
        return df.loc[~df[CENSORED].astype(bool)].copy()
    if policy == "bound":
        out = df.copy()
        mask = out[CENSORED].astype(bool)
        out.loc[mask, TARGET] = out.loc[mask, "censor_bound"]
        return out
    raise ValueError(f"unknown censored policy {policy!r}; use floor, bound or drop")
