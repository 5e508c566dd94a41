"""Li+ BVSE force-field parameters: bvlain's softBV tables, looked up per framework species.

The Morse parameters (Li+ with each anion), the principal quantum numbers and the covalent
radii are bvlain's own (its ``data/`` tables), read once on first use. Also the two errors
of the BVSE calculation, shared by its modules.
"""

from __future__ import annotations

import functools
import pickle
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
from pymatgen.core import Element, Structure

from miscreen.schema import MOBILE_ION

MOBILE_CHARGE = 1
SCREENING = 0.74  # Coulomb screening factor f (bvlain's default)


class BVSEError(ValueError):
    """The structure cannot be treated (no Li, no framework, missing parameters...)."""


class BVSETimeout(TimeoutError):
    """The per-structure time limit was exceeded."""


@functools.cache
def bvlain_tables() -> dict[str, Any]:
    """bvlain's softBV parameter tables, read once on first use (trusted package data)."""
    root = resources.files("bvlain") / "data"
    out: dict[str, Any] = {}
    for name in ("cation", "quantum_n"):
        with (root / f"{name}.pkl").open("rb") as fh:
            out[name] = pickle.load(fh)
    return out


def _covalent_radius(z: int, q: float, softbv: bool) -> float:
    """Covalent radius (A) of element ``z``: softBV's for charge ``q`` if ``softbv`` and it
    has one, else ASE's."""
    from bvlain.data.covalent_radii import covalent_radii, covalent_radii_softbv

    if softbv:
        table = covalent_radii_softbv.get(z, {})
        if round(q) in table:
            return float(table[round(q)])
    return float(covalent_radii[z])


@dataclass(frozen=True)
class Framework:
    """Non-Li species, one row per (site, species), with their BVSE partners' parameters."""

    frac: np.ndarray  # (m, 3) fractional coordinates
    weight: np.ndarray  # (m,) site occupancy of the species
    is_anion: np.ndarray  # (m,) Morse partner of Li+ (else a cation: Coulomb partner)
    morse: np.ndarray  # (m, 3) r_min, alpha, d0 (zeros for cations)
    coulomb: np.ndarray  # (m, 3) q, covalent radius, principal quantum number (zeros: anions)
    li: tuple[float, float, float]  # Li+: q, covalent radius, principal quantum number
    screening: float


def framework_parameters(structure: Structure, softbv_radii: bool, screening: float) -> Framework:
    """Parameters for every non-Li species of an oxidation-state-decorated structure."""
    tables = bvlain_tables()
    z_li = Element(MOBILE_ION).Z
    morse = tables["cation"][z_li][MOBILE_CHARGE]
    n_q = tables["quantum_n"]
    rows: list[tuple[Any, ...]] = []
    for site in structure:
        for sp, occ in site.species.items():
            if sp.symbol == MOBILE_ION or occ <= 0:
                continue
            q = float(getattr(sp, "oxi_state", 0.0) or 0.0)
            if q < 0:
                key = round(q)
                if abs(q - key) > 1e-6 or key not in morse.get(sp.Z, {}):
                    raise BVSEError(f"no BVSE Morse parameters for Li+ with {sp.symbol}{q:+g}")
                p = morse[sp.Z][key]
                rows.append(
                    (site.frac_coords, occ, True, (p["r_min"], p["alpha"], p["d0"]), (0,) * 3)
                )
            elif q > 0:
                if sp.Z not in n_q:
                    raise BVSEError(f"bvlain has no BVSE Coulomb parameters for {sp.symbol}")
                coulomb = (q, _covalent_radius(sp.Z, q, softbv_radii), n_q[sp.Z])
                rows.append((site.frac_coords, occ, False, (0,) * 3, coulomb))
    if not rows:
        raise BVSEError("no framework left once Li is removed")
    frac, weight, is_anion, morse_p, coulomb_p = zip(*rows, strict=True)
    li = (float(MOBILE_CHARGE), _covalent_radius(z_li, MOBILE_CHARGE, softbv_radii), n_q[z_li])
    return Framework(
        frac=np.asarray(frac, dtype=float) % 1.0,
        weight=np.asarray(weight, dtype=float),
        is_anion=np.asarray(is_anion, dtype=bool),
        morse=np.asarray(morse_p, dtype=float),
        coulomb=np.asarray(coulomb_p, dtype=float),
        li=(li[0], li[1], float(li[2])),
        screening=screening,
    )


@functools.cache
def li_anions() -> frozenset[tuple[str, int]]:
    """(element, charge) of the anions that have Li+ BVSE parameters (N3-, O2-, S2-, ...)."""
    table = bvlain_tables()["cation"][Element(MOBILE_ION).Z][MOBILE_CHARGE]
    return frozenset((Element.from_Z(int(z)).symbol, int(q)) for z in table for q in table[z])
