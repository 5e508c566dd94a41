"""Pooled SevenNet-0 node features of a structure, disordered sites as mixtures (issue 23).

Research code for ``benchmarks/pretrained_features.py``: the counterpart of
``miscreen.featurize.pretrained`` (CHGNet) for SevenNet-0 (the ``7net-0`` weights shipped in
the ``sevenn`` wheel, Park et al. 2024, trained on MPtrj like CHGNet 0.3.0; the model
``miscreen.potentials`` loads as ``sevennet-0``).

SevenNet-0 is a NequIP-style network: a one-hot over its 89 elements, one linear layer to
128 scalar channels, five interaction blocks (the last one keeps only the 128 scalars, l = 0)
and a readout to atomic energies. Per structure this gives ``2 x 128`` numbers: the mean over
all sites and the mean over the Li sites of the node features after the fifth block (the
input of the readout, ``reduce_input_to_hidden``). Both means are occupancy-weighted: by each
site's total occupancy and by its Li occupancy; a structure without Li gets NaN for the Li
half.

Disorder: the one-hot input of a site is replaced by its occupancy vector (the element
occupancies in the model's element order); a vacancy adds nothing, so a site half filled
with Li starts as half a Li and a Ge/P site as half of each, as CHGNet's features do. The
one-hot enters the network only there (the self-connections are linear in the node
features, the convolution weights come from the edge lengths), so a mixture is the
network's own forward pass with another first input. The graph is SevenNet's own (its
``unlabeled_atoms_to_graph``, 5 A cutoff) on the site positions as given; no supercell is
enumerated. Structures with more than ``MAX_SITES`` sites are refused, as are elements the
model has no one-hot for (it stops at Pu and misses a few, e.g. Po).

Caveat (measured on the 254 OBELiX training CIFs): where a CIF splits a species over
positions a fraction of an angstrom apart, every partial site is a neighbour of the others,
closer and more crowded than anything in MPtrj, and the network's output runs away. The
pooled features are of order 1 to 10 for most CIFs, 100 to 300 for two and 1e7 to 5e7 for
three (9yt, ckw, yab: 144 to 148 sites, partial sites 0.33 to 0.64 A apart). CHGNet's stay
below 41 on the same CIFs. They are kept as they are (finite); the study's signed-log
variant shows they do not matter to its trees.

Result (``benchmarks/pretrained_features.py``, 5 seeds): on top of preset ``full`` -0.038 +-
0.032 in the mean of the three CVs (noise), leave-cluster-out -0.13 (noise), DOI and
chemical system unchanged; by themselves worse than today's features under DOI and
chemical-system CV. Not adopted; 0.46 s of CPU per OBELiX CIF (median, one thread).
"""

from __future__ import annotations

import warnings
from functools import cache
from typing import Any

import numpy as np
from pymatgen.core import Element, Structure

SEVENNET = (
    "Y. Park, J. Kim, S. Hwang and S. Han, Scalable parallel algorithm for graph neural "
    "network interatomic potentials in molecular dynamics simulations, J. Chem. Theory "
    "Comput. 20 (2024) 4857-4868"
)
WEIGHTS = "7net-0"
DIM = 128  # scalar node channels after the last interaction block
MAX_SITES = 500
ONEHOT = "onehot_idx_to_onehot"  # the module whose output a mixture replaces
FIRST = "onehot_to_feature_x"  # the first layer: one-hot -> 128 scalars
READOUT = "reduce_input_to_hidden"  # the first module after the interaction blocks


@cache
def model() -> Any:
    """SevenNet-0 on the CPU in eval mode, loaded once per process."""
    from sevenn import util

    checkpoint = util.load_checkpoint(WEIGHTS)
    with warnings.catch_warnings():  # "no tensor-product accelerator"
        warnings.simplefilter("ignore")
        net = checkpoint.build_model()
    net.set_is_batch_data(False)
    return net.eval()


@cache
def type_map() -> dict[int, int]:
    """Atomic number -> column of SevenNet-0's one-hot."""
    return {int(z): int(i) for z, i in model().type_map.items()}


def occupancies(structure: Structure) -> np.ndarray:
    """(sites, 89) occupancy of every element on every site, in the one-hot's columns."""
    if len(structure) > MAX_SITES:
        raise ValueError(f"{len(structure)} sites is over the cap of {MAX_SITES}")
    columns = type_map()
    occ = np.zeros((len(structure), len(columns)))
    for i, site in enumerate(structure):
        for species, amount in site.species.items():
            z = Element(species.symbol).Z
            if z not in columns:
                raise ValueError(f"SevenNet-0 has no one-hot for {species.symbol}")
            occ[i, columns[z]] += amount
    return occ


def graph(structure: Structure, occ: np.ndarray) -> Any:
    """SevenNet's ``AtomGraphData`` of the site positions (its cutoff); each site holds its
    most abundant element (read only by SevenNet's own one-hot path)."""
    from pymatgen.io.ase import AseAtomsAdaptor
    from sevenn.atom_graph_data import AtomGraphData
    from sevenn.train.dataload import unlabeled_atoms_to_graph

    z_of = {i: z for z, i in type_map().items()}
    species = [Element.from_Z(z_of[int(i)]) for i in occ.argmax(axis=1)]
    atoms = AseAtomsAdaptor.get_atoms(Structure(structure.lattice, species, structure.frac_coords))
    return AtomGraphData.from_numpy_dict(unlabeled_atoms_to_graph(atoms, model().cutoff))


def node_features(data: Any, occ: np.ndarray) -> np.ndarray:
    """(sites, 128) node features after the interaction blocks, ``occ`` (sites, 89) in place
    of the one-hot input. SevenNet's modules in order, the one-hot skipped and the forward
    stopped before the readout."""
    import sevenn._keys as KEY
    import torch

    mixed = torch.as_tensor(occ, dtype=torch.get_default_dtype())
    data[KEY.NODE_FEATURE] = mixed
    data[KEY.NODE_ATTR] = mixed
    data[KEY.ATOM_TYPE] = mixed.argmax(dim=1)  # read only by the readout's rescaling
    with torch.no_grad():
        for name, module in model().named_children():
            if name == READOUT:
                break
            if name != ONEHOT:
                data = module(data)
    return data[KEY.NODE_FEATURE].numpy().astype(np.float64)


def reference_node_features(structure: Structure) -> np.ndarray:
    """What :func:`node_features` computes for an ordered structure, by SevenNet's own path
    (the reference it is tested against): the model's full forward (one-hot of the atomic
    numbers, energy, forces), the node features read where they enter the readout."""
    import sevenn._keys as KEY

    net = model()
    seen: list[np.ndarray] = []

    def keep(_module: Any, args: tuple) -> None:
        seen.append(args[0][KEY.NODE_FEATURE].detach().numpy().astype(np.float64))

    handle = net.get_submodule(READOUT).register_forward_pre_hook(keep)
    try:
        net(graph(structure, occupancies(structure)))
    finally:
        handle.remove()
    return seen[0]


def first_layer(occ: np.ndarray) -> np.ndarray:
    """(sites, 128) the output of SevenNet-0's first layer (one-hot -> 128 scalars) for the
    inputs ``occ``: linear, so a mixture lies between its pure ends."""
    import torch

    with torch.no_grad():
        data = {"x": torch.as_tensor(occ, dtype=torch.get_default_dtype())}
        return model().get_submodule(FIRST)(data)["x"].numpy().astype(np.float64)


def pool(features: np.ndarray, occ: np.ndarray) -> np.ndarray:
    """Occupancy-weighted mean over all sites and Li-weighted mean over Li sites (NaN when
    the structure holds no Li)."""
    total = occ.sum(axis=1)
    li = occ[:, type_map()[Element("Li").Z]]
    mean_all = np.average(features, axis=0, weights=total)
    mean_li = np.average(features, axis=0, weights=li) if li.sum() > 0 else np.full(DIM, np.nan)
    return np.concatenate([mean_all, mean_li])


def embed(structure: Structure) -> np.ndarray:
    """(256,) pooled SevenNet-0 features of one structure; a ``ValueError`` for a structure
    over the site cap, with an element outside the model or whose features are not
    finite."""
    occ = occupancies(structure)
    out = pool(node_features(graph(structure, occ), occ), occ)
    if not np.isfinite(out[:DIM]).all():
        raise ValueError("SevenNet-0 features are not finite (sites on top of each other?)")
    return out


def feature_labels() -> list[str]:
    return [f"sevennet:{part}_{i:03d}" for part in ("site", "li") for i in range(DIM)]
