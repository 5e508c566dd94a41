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

from miscreen.featurize.base import Entry, Featurizer

VERSION = "2"
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
    "cell:point_group_order",
    "cell:centrosymmetric",
]

# No solid packs atoms tighter than ~5 A^3/atom; below this the table's composition must
# already be per cell rather than per formula unit.
MIN_VOLUME_PER_ATOM = 4.0
_SYSTEM_BOUNDS = (2, 15, 74, 142, 167, 194, 230)  # triclinic .. cubic upper bounds
# The 32 crystal classes as (last space-group number, point-group order, centrosymmetric).
_CLASSES = (
    (1, 1, 0),
    (2, 2, 1),
    (5, 2, 0),
    (9, 2, 0),
    (15, 4, 1),
    (24, 4, 0),
    (46, 4, 0),
    (74, 8, 1),
    (80, 4, 0),
    (82, 4, 0),
    (88, 8, 1),
    (98, 8, 0),
    (110, 8, 0),
    (122, 8, 0),
    (142, 16, 1),
    (146, 3, 0),
    (148, 6, 1),
    (155, 6, 0),
    (161, 6, 0),
    (167, 12, 1),
    (173, 6, 0),
    (174, 6, 0),
    (176, 12, 1),
    (182, 12, 0),
    (186, 12, 0),
    (190, 12, 0),
    (194, 24, 1),
    (199, 12, 0),
    (206, 24, 1),
    (214, 24, 0),
    (220, 24, 0),
    (230, 48, 1),
)


def _crystal_system(sg: float) -> float:
    if not math.isfinite(sg) or not 1 <= sg <= 230:
        return math.nan
    return float(next(i for i, top in enumerate(_SYSTEM_BOUNDS) if sg <= top))


def _point_group(sg: float) -> tuple[float, float]:
    """Point-group order and centrosymmetry of a space-group number (NaN when unknown)."""
    if not math.isfinite(sg) or not 1 <= sg <= 230:
        return math.nan, math.nan
    _, order, centro = next(c for c in _CLASSES if sg <= c[0])
    return float(order), float(centro)


def featurize(
    composition: Composition,
    structure: Structure | None,
    spacegroup: float,
    lattice: tuple[float, ...],
    z: float,
) -> np.ndarray:
    if structure is not None:
        lat = structure.lattice
        elements = structure.composition.element_composition
        n_atoms = elements.num_atoms
        n_li = elements["Li"]
    else:
        if not all(math.isfinite(x) for x in lattice):
            return np.array(
                [spacegroup, _crystal_system(spacegroup)]
                + [math.nan] * 9
                + list(_point_group(spacegroup))
            )
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
            *_point_group(spacegroup),
        ],
        dtype=float,
    )


class CellFeaturizer(Featurizer):
    """Space group, point group, lattice, volume per atom and Li density, with or without
    positions (disordered cells: occupancy-weighted atom counts)."""

    name = "cell"
    version = VERSION
    needs_structure = False

    def feature_labels(self) -> list[str]:
        return list(LABELS)

    def featurize(self, entry: Entry) -> list[float]:
        return featurize(
            entry.composition, entry.structure, entry.spacegroup, entry.lattice, entry.z
        ).tolist()
