"""Featurizer groups, the named presets built from them, and the feature schema.

Presets, named like the models that use them: ``composition`` (comp + oxi: the
composition alone, what a list of formulas has), ``cell`` (+ cell: space group and
lattice, as OBELiX gives for every row),
``structure`` (comp + cell + struct: positions give density, packing, disorder,
coordination), ``li_conductor`` (comp + cell + ion + li: Li-transport descriptors),
``full`` (comp, cell, struct, ion, li; the default for structures), ``full_chgnet`` (full +
chgnet: pooled CHGNet atom features, opt-in; about 0.16 s of CPU per OBELiX CIF on average,
0.016 s per candidate). Rows without a structure get NaN in the groups that need positions;
the model imputes them.

Which groups earn a place was decided by ``benchmarks/model_research.py`` (training split,
mean of DOI-grouped, leave-cluster-out and chemical-system CV, 5 seeds): ``oxi`` lowers that
MAE by 0.10 for compositions (on 4 of 5 seeds, mean beyond twice its noise) and 0.06 with
cells (on every seed) but only 0.04 for structures (within the noise), where ``ion`` and
``li`` already carry the oxidation states, so ``full`` goes without it. Element embeddings
(MEGNet: +0.10, higher on 4 of 5 seeds; mat2vec: -0.02, noise; CHGNet's element embedding:
+0.13 compositions / +0.15 cells on top of oxi, higher on every seed) and anion-framework
descriptors (+0.00) did not earn a place; their featurizers live in ``benchmarks/research/``
(not shipped) for the study to rerun. CHGNet features (``benchmarks/pretrained_features.py``,
254 CIF rows, 5 seeds) lower the mean by 0.10 (every seed) but only through leave-cluster-out
CV (3.57 -> 3.30; DOI and chemical-system CV -0.01 each); the run's own DOI-grouped CV on
the structure rows gets worse with them (1.248 -> 1.324), and at 15.5 ms per candidate they
would cap the default preset near 130 structures/s on 2 cores, so they are the opt-in
``full_chgnet``, not part of ``full``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

from miscreen.featurize.base import Featurizer
from miscreen.featurize.cell import CellFeaturizer
from miscreen.featurize.composition import CompositionFeaturizer
from miscreen.featurize.ionic import IonicFeaturizer
from miscreen.featurize.li_sites import LiSiteFeaturizer
from miscreen.featurize.oxi_composition import OxidationCompositionFeaturizer
from miscreen.featurize.pretrained import PretrainedFeaturizer
from miscreen.featurize.structure import StructureFeaturizer

GROUPS: dict[str, type[Featurizer]] = {
    "comp": CompositionFeaturizer,
    "cell": CellFeaturizer,
    "struct": StructureFeaturizer,
    "ion": IonicFeaturizer,
    "li": LiSiteFeaturizer,
    "oxi": OxidationCompositionFeaturizer,
    "chgnet": PretrainedFeaturizer,
}
PRESET_GROUPS: dict[str, tuple[str, ...]] = {
    "composition": ("comp", "oxi"),
    "cell": ("comp", "cell", "oxi"),
    "structure": ("comp", "cell", "struct"),
    "li_conductor": ("comp", "cell", "ion", "li"),
    "full": ("comp", "cell", "struct", "ion", "li"),
    "full_chgnet": ("comp", "cell", "struct", "ion", "li", "chgnet"),
}
PRESETS = tuple(PRESET_GROUPS)


@cache
def featurizer(group: str) -> Featurizer:
    """The (stateless, per-process) featurizer instance of a group."""
    return GROUPS[group]()


@cache
def labels(group: str) -> tuple[str, ...]:
    return tuple(featurizer(group).feature_labels())


def groups(preset: str) -> tuple[str, ...]:
    if preset not in PRESET_GROUPS:
        raise ValueError(f"unknown feature preset {preset!r}; choose one of {PRESETS}")
    return PRESET_GROUPS[preset]


@dataclass(frozen=True)
class FeatureSchema:
    """Names, order and version of a feature table; saved with every table and model."""

    preset: str
    names: tuple[str, ...]
    version: str

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "names": list(self.names)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSchema:
        return cls(preset=d["preset"], names=tuple(d["names"]), version=d["version"])

    def difference(self, other: FeatureSchema) -> str:
        """What differs from ``other``, in words ('' when nothing does)."""
        missing = [n for n in self.names if n not in set(other.names)]
        extra = [n for n in other.names if n not in set(self.names)]
        parts = []
        if self.preset != other.preset:
            parts.append(f"preset {self.preset!r} vs {other.preset!r}")
        if missing or extra:
            parts.append(
                f"{len(missing)} features missing (first: {missing[:5]}) and {len(extra)} "
                f"unexpected (first: {extra[:5]})"
            )
        elif self.names != other.names:
            parts.append("the same feature names in a different order")
        if self.version != other.version:
            parts.append(f"featurizer versions {self.version} vs {other.version}")
        return "; ".join(parts)

    def check(self, other: FeatureSchema) -> None:
        """Raise ``ValueError`` unless ``other`` has exactly this preset, version and names."""
        if self != other:
            raise ValueError(
                f"feature schema mismatch between the model and these features: "
                f"{self.difference(other)}. Re-featurize with the model's preset or retrain."
            )


def feature_schema(preset: str) -> FeatureSchema:
    """The schema a preset produces: concatenated group labels, versioned per group."""
    gs = groups(preset)
    names = tuple(name for g in gs for name in labels(g))
    version = "-".join(f"{g}{featurizer(g).version}" for g in gs)
    return FeatureSchema(preset, names, version)
