"""Features transferred from a pretrained universal potential: CHGNet's atom features, pooled.

CHGNet (the 0.3.0 weights shipped in the ``chgnet`` wheel, trained on about 1.5 million
Materials Project DFT calculations) turns every site into a 64-number vector that knows its
element and its neighbourhood out to 6 A. Per structure this gives ``2 x 64`` numbers: the
mean over all sites and the mean over the Li sites of the atom features CHGNet returns with
``return_atom_feas`` (those before its last interaction block, the ones its magnetic moments
are read from). Both means are occupancy-weighted: by each site's total occupancy, and by
its Li occupancy; a structure without Li gets NaN for the Li half.

Disorder: a site's input vector is the occupancy-weighted sum of the element embeddings of
its species (the first layer of the network, ``atom_embedding``); a vacancy adds nothing,
so a site half filled with Li starts as half a Li, as everywhere in ``miscreen.featurize``.
The graph (bonds and angles) is built on the site positions as given, so no supercell is
ever enumerated; the cost is that of the CIF's own cell. Structures with more than
``MAX_SITES`` sites are refused. ``torch`` and ``chgnet`` are imported on first use only.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from functools import cache
from typing import Any

import numpy as np
from pymatgen.core import Element, Structure

from miscreen.featurize.base import Entry, Featurizer

CHGNET = (
    "B. Deng, P. Zhong, K. Jun, J. Riebesell, K. Han, C. J. Bartel and G. Ceder, CHGNet as a "
    "pretrained universal neural network potential for charge-informed atomistic modelling, "
    "Nat. Mach. Intell. 5 (2023) 1031-1041"
)
WEIGHTS = "0.3.0"
DIM = 64  # CHGNet's atom feature width
N_ELEMENTS = 94  # rows of CHGNet's element embedding (H to Pu)
MAX_SITES = 500
# structures per forward pass: batching does not pay on one CPU thread (the 254 OBELiX
# training CIFs: 103 s of CPU one by one, 164 s in batches of 16)
BATCH_SIZE = 1


@cache
def model() -> Any:
    """The pretrained CHGNet on the CPU, loaded once per process (its banner silenced)."""
    from chgnet.model import CHGNet

    with redirect_stdout(io.StringIO()):
        return CHGNet.load(model_name=WEIGHTS, use_device="cpu", verbose=False).eval()


def occupancies(structure: Structure) -> np.ndarray:
    """(sites, 94) occupancy of every element on every site (columns are Z - 1)."""
    if len(structure) > MAX_SITES:
        raise ValueError(
            f"{len(structure)} sites is over the pretrained featurizer's cap of {MAX_SITES}"
        )
    occ = np.zeros((len(structure), N_ELEMENTS))
    for i, site in enumerate(structure):
        for species, amount in site.species.items():
            z = Element(species.symbol).Z
            if z > N_ELEMENTS:
                raise ValueError(f"CHGNet has no embedding for {species.symbol} (Z = {z})")
            occ[i, z - 1] += amount
    return occ


def placeholder(structure: Structure, occ: np.ndarray) -> Structure:
    """The same positions, each site holding its most abundant element: only the graph
    (which atoms are bonded) is read from it; the element vectors are replaced."""
    species = [Element.from_Z(int(z) + 1) for z in occ.argmax(axis=1)]
    return Structure(structure.lattice, species, structure.frac_coords)


def site_inputs(occ: np.ndarray) -> np.ndarray:
    """(sites, 64) first-layer vectors: the occupancy-weighted sum of element embeddings."""
    weights = model().atom_embedding.embedding.weight.detach().numpy().astype(np.float64)
    return occ @ weights


@contextmanager
def mixed_embedding(inputs: list[np.ndarray]) -> Iterator[None]:
    """Within the block, CHGNet's element embedding returns ``inputs`` (one array per
    structure of the next batch, concatenated in batch order) instead of pure elements."""
    import torch

    mixed = torch.as_tensor(np.concatenate(inputs), dtype=torch.float32)

    def replace(_module: Any, _args: Any, out: Any) -> Any:
        if out.shape != mixed.shape:
            raise RuntimeError(f"embedding of shape {tuple(out.shape)}, not {mixed.shape}")
        return mixed

    handle = model().atom_embedding.register_forward_hook(replace)
    try:
        yield
    finally:
        handle.remove()


def pool(atom_fea: np.ndarray, occ: np.ndarray) -> np.ndarray:
    """Occupancy-weighted mean over all sites and Li-weighted mean over Li sites (NaN when
    the structure holds no Li)."""
    total = occ.sum(axis=1)
    li = occ[:, Element("Li").Z - 1]
    mean_all = np.average(atom_fea, axis=0, weights=total)
    mean_li = np.average(atom_fea, axis=0, weights=li) if li.sum() > 0 else np.full(DIM, np.nan)
    return np.concatenate([mean_all, mean_li])


def embed(structures: Sequence[Structure], batch_size: int = BATCH_SIZE) -> np.ndarray:
    """(structures, 128) pooled CHGNet features, ``batch_size`` structures per forward
    pass; a ``ValueError`` for a structure over the site cap, with an isolated atom (no
    neighbour within 6 A) or whose features are not finite."""
    import torch

    net = model()
    occs = [occupancies(s) for s in structures]
    graphs = [
        net.graph_converter(placeholder(s, o), graph_id=str(i))
        for i, (s, o) in enumerate(zip(structures, occs, strict=True))
    ]
    out = np.empty((len(structures), 2 * DIM))
    for start in range(0, len(graphs), batch_size):
        stop = min(start + batch_size, len(graphs))
        inputs = [site_inputs(o) for o in occs[start:stop]]
        with torch.no_grad(), mixed_embedding(inputs):
            pred = net(graphs[start:stop], task="e", return_atom_feas=True)
        for k, fea in enumerate(pred["atom_fea"]):
            out[start + k] = pool(fea.numpy().astype(np.float64), occs[start + k])
    if not np.isfinite(out[:, :DIM]).all():
        raise ValueError("CHGNet features are not finite (sites on top of each other?)")
    return out


class PretrainedFeaturizer(Featurizer):
    """Pooled CHGNet atom features of one structure (see the module docstring)."""

    name = "chgnet"
    version = "1"
    needs_structure = True

    def feature_labels(self) -> list[str]:
        return [f"{self.name}:{part}_{i:02d}" for part in ("site", "li") for i in range(DIM)]

    def featurize(self, entry: Entry) -> list[float]:
        if entry.structure is None:
            raise ValueError("the pretrained featurizer needs a structure")
        return embed([entry.structure])[0].tolist()

    def citations(self) -> list[str]:
        return [CHGNET]

    def implementors(self) -> list[str]:
        return ["chgnet", "miscreen"]
