"""Measured conductivities: parsing and the explicit policy for censored values.

OBELiX reports 37 conductivities only as upper bounds (``<1E-10``, ``<1E-8``). Upstream maps
them to 1e-15 S/cm. The policy is chosen in the config (``data.censored``):

- ``bound`` (default): use the bound itself (log10 of 1e-10 -> -10), the most conservative
  reading; chosen by new-chemistry CV on the training split (``benchmarks/model_research.py``:
  MAE 0.19-0.22 lower for composition and cell models, 0.11 for structures);
- ``floor``: log10 sigma = -15, as upstream does;
- ``drop``: leave censored rows out of training.

Whatever the policy, metrics score censored rows at -15 (comparable with the published
OBELiX baselines) and also by a bound-aware MAE.

Every labelled table keeps ``censored`` (bool) and ``censor_bound`` so nothing is silent.

Measured values must be physical: finite, positive and within [``MIN_SIGMA``,
``MAX_SIGMA``] S/cm (the best solid electrolytes reach about 10^-2 S/cm, liquid acids about
1; nothing conducts ions at 10^3 S/cm, so ``1e308`` is a typo, not log10 sigma = 308).
"""

from __future__ import annotations

import math
from typing import Literal

import pandas as pd

from miscreen.schema import CENSORED, TARGET

CensoredPolicy = Literal["floor", "bound", "drop"]
OBELIX_FLOOR_LOG10 = -15.0
MIN_SIGMA = 1e-30  # S/cm
MAX_SIGMA = 1e3  # S/cm


def parse_sigma(raw: object) -> tuple[float, bool, float]:
    """Parse one conductivity cell -> (log10 sigma, censored, log10 bound or NaN).

    Censored values come back with the upstream floor (-15); ``apply_censoring`` applies
    the configured policy. Raises ``ValueError`` for anything that is not a positive number
    in the physical range.
    """
    text = str(raw).strip()
    censored = text.startswith("<")
    number = text[1:].strip() if censored else text
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"conductivity {_shown(text)} is not a number in S/cm") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"conductivity must be a positive number in S/cm, got {_shown(text)}")
    log10 = check_log10_sigma(math.log10(value), f"conductivity {_shown(text)} S/cm")
    if censored:
        return OBELIX_FLOOR_LOG10, True, log10
    return log10, False, math.nan


def parse_log10_sigma(raw: object) -> float:
    """Parse a ``log10_sigma`` cell (log10 of S/cm); ``ValueError`` unless a finite number
    in the physical range."""
    text = str(raw).strip()
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"log10_sigma {_shown(text)} is not a number") from None
    return check_log10_sigma(value, f"log10_sigma {_shown(text)}")


def check_log10_sigma(value: float, what: str) -> float:
    """``value`` when it is a finite log10 conductivity within the physical range."""
    lo, hi = math.log10(MIN_SIGMA), math.log10(MAX_SIGMA)
    if not math.isfinite(value):
        raise ValueError(f"{what} is not a finite number")
    if not lo <= value <= hi:
        raise ValueError(
            f"{what} is outside the physical range {MIN_SIGMA:g} to {MAX_SIGMA:g} S/cm "
            f"(log10 {lo:g} to {hi:g}); check the unit (S/cm) and the --target column"
        )
    return value


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


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
