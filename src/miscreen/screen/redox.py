"""Redox-active elements: transition metals that change oxidation state easily.

A solid electrolyte sits between a lithium (or graphite) anode near 0 V and a cathode near
4 V against Li/Li⁺; a cation that is reduced or oxidised inside that window makes the
material an electronic (mixed) conductor or decomposes it. Sendek et al. (Energy Environ.
Sci. 10, 306 (2017)) left such transition metals out before ranking conductivity.

:data:`REDOX_ACTIVE` is this module's documented list (the paper's own list could not be
retrieved here, so it is stated and argued, not copied):

- the 3d metals Ti to Cu: each has two or more common oxidation states whose couple lies in
  or near 0-4.5 V vs Li/Li⁺ (Ti⁴⁺/Ti³⁺ about 1.5 V: LATP and LLTO are reduced by Li metal;
  V, Cr, Mn, Fe, Co, Ni, Cu are the cathode and conversion-electrode couples);
- Nb, Mo, Ru, W and Re: Nb⁵⁺/Nb⁴⁺ (about 1.5 V), Mo⁶⁺/Mo⁴⁺, W⁶⁺/W⁵⁺ and Ru, Re oxides are
  all Li-insertion or conversion electrodes.

Not on the list, on purpose: Sc, Y, Zr, Hf, Zn, Cd (one common oxidation state; Zr and
Hf sit in LLZO-type and NASICON electrolytes), Ta (Ta⁵⁺ in Ta-doped LLZO is reduced only
far below 1 V) and the lanthanides (La³⁺ in LLZO, LLTO). Main-group elements with two
oxidation states (Sn, Sb, Ge, Bi, ...) are not transition metals and are left to the band
gap and stability filters. Callers may pass their own set.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
from pymatgen.core import Composition

from miscreen import schema as S

REDOX_ACTIVE = frozenset(
    {"Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Nb", "Mo", "Ru", "W", "Re"}
)


def redox_elements(composition: object, active: Iterable[str] = REDOX_ACTIVE) -> tuple[str, ...]:
    """The redox-active elements of a composition, sorted; () when none or unparsable."""
    try:
        comp = Composition(str(composition))
    except (ValueError, KeyError, TypeError, OverflowError):
        return ()
    wanted = set(active)
    return tuple(sorted(el.symbol for el in comp.elements if el.symbol in wanted))


def redox_reason(elements: Iterable[str]) -> str:
    """Why a row with these redox-active elements is removed ('' when there are none)."""
    found = sorted(elements)
    if not found:
        return ""
    plural = "s" if len(found) > 1 else ""
    return (
        f"redox-active transition metal{plural} {', '.join(found)} "
        "(changes oxidation state inside the 0-4.5 V window: electronic leakage or decomposition)"
    )


def redox_table(records: pd.DataFrame, active: Iterable[str] = REDOX_ACTIVE) -> pd.DataFrame:
    """Per record (same index): ``redox_active_elements`` (comma-separated, '' when none)
    and ``excluded_reason`` (the removal reason, '' when the row stays)."""
    wanted = frozenset(active)
    comps = records.get(S.COMPOSITION, pd.Series("", index=records.index))
    found = [redox_elements(c, wanted) for c in comps]
    return pd.DataFrame(
        {
            S.REDOX_ACTIVE: [",".join(f) for f in found],
            S.EXCLUDED: [redox_reason(f) for f in found],
        },
        index=records.index,
    )
