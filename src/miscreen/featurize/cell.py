"""Cell descriptors available with or without atomic positions: space group, lattice
parameters, volume per atom and Li number density.

With a structure they are read off it (occupancy-weighted atom counts); without one they
come from the table's space group, lattice parameters and Z (formula units per cell);
where Z times the composition would pack atoms impossibly tight, the composition is taken
as the cell content.
"""

from __future__ import annotations

import math

import numpy as np
from pymatgen.core import Composition, Lattice, Structure

VERSION = "1"
LABELS = [
    "cell:spacegroup",
    "cell:crystal_system",
    "cell:a",
    "cell:b",
    "cell:c",
    "cell:alpha",
    "cell:beta",
    "cell:gamma",
    "cell:volume_per_atom",
    "cell:li_per_volume",
    "cell:anisotropy",
]

# No solid packs atoms tighter than ~5 A^3/atom; below this the table's composition must
# already be per cell rather than per formula unit.
MIN_VOLUME_PER_ATOM = 4.0
_SYSTEM_BOUNDS = (2, 15, 74, 142, 167, 194, 230)  # triclinic .. cubic upper bounds


def _crystal_system(sg: float) -> float:
    if not math.isfinite(sg) or not 1 <= sg <= 230:
        return math.nan
    return float(next(i for i, top in enumerate(_SYSTEM_BOUNDS) if sg <= top))


def featurize(
    composition: Composition,
    structure: Structure | None,
    spacegroup: float,
    lattice: tuple[float, ...],
    z: float,
) -> np.ndarray:
    if structure is not None:
        lat = structure.lattice
        n_atoms = structure.composition.num_atoms
        n_li = structure.composition["Li"]
    else:
        if not all(math.isfinite(x) for x in lattice):
            return np.array([spacegroup, _crystal_system(spacegroup)] + [math.nan] * 9)
        lat = Lattice.from_parameters(*lattice)
        z = z if math.isfinite(z) and z > 0 else 1.0
        if lat.volume / (composition.num_atoms * z) < MIN_VOLUME_PER_ATOM:
            z = 1.0  # the composition already counts the whole cell (OBELiX does this often)
        n_atoms = composition.num_atoms * z
        n_li = composition["Li"] * z
    abc = sorted(lat.abc)
    volume = lat.volume
    return np.array(
        [
            spacegroup,
            _crystal_system(spacegroup),
            *lat.abc,
            *lat.angles,
            volume / n_atoms,
            n_li / volume,
            abc[2] / abc[0],
        ],
        dtype=float,
    )
