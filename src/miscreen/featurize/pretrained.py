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

Speed (issue 23): the graph is built with numpy (:func:`crystal_graph`: the same bonds,
angles and edge order as CHGNet's converter, whose Python loop over angles took a third of
the time), and the forward pass stops at the block whose atom features are read
(:func:`atom_features`). The features are identical to the last bit to those of CHGNet's own
path (:func:`reference_atom_features`, kept for the tests and ``benchmarks/pretrained_speed.py``).
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
# training CIFs: 42 s of CPU one by one, 67 s in batches of 16; 500 snapshot candidates:
# 8.2 s and 7.8 s)
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
            z = atomic_number(species.symbol)
            if z > N_ELEMENTS:
                raise ValueError(f"CHGNet has no embedding for {species.symbol} (Z = {z})")
            occ[i, z - 1] += amount
    return occ


@cache
def atomic_number(symbol: str) -> int:
    return Element(symbol).Z


def site_inputs(occ: np.ndarray) -> np.ndarray:
    """(sites, 64) first-layer vectors: the occupancy-weighted sum of element embeddings."""
    return occ @ embedding_weights()


@cache
def embedding_weights() -> np.ndarray:
    """(94, 64) CHGNet's element embedding (H to Pu), as float64."""
    return model().atom_embedding.embedding.weight.detach().numpy().astype(np.float64)


def crystal_graph(structure: Structure, occ: np.ndarray) -> Any:
    """CHGNet's ``CrystalGraph`` of the site positions: the neighbour list CHGNet's converter
    reads (6 A), the same bonds, angles (bonds up to 3 A) and edge order as its 'fast'
    algorithm, built with numpy instead of a Python object per edge. ``atomic_number`` holds
    each site's most abundant element (the element vectors are replaced anyway). A
    ``ValueError`` for an isolated atom, as CHGNet's converter."""
    import torch
    from chgnet.graph.crystalgraph import CrystalGraph

    converter = model().graph_converter
    center, neighbor, image, distance = structure.get_neighbor_list(
        r=converter.atom_graph_cutoff, sites=structure.sites, numerical_tol=1e-8
    )
    isolated = len(structure) - len(np.unique(center))
    if isolated:
        raise ValueError(
            f"{isolated} isolated atom(s): no neighbour within {converter.atom_graph_cutoff} A"
        )
    image = np.rint(image).astype(np.int64)
    undirected, first, second = undirected_edges(center, neighbor, image)
    angles = angle_list(
        center, neighbor, distance, (undirected, first, second), converter.bond_graph_cutoff
    )

    def ints(a: np.ndarray) -> Any:
        return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.int32)

    return CrystalGraph(
        atomic_number=ints(occ.argmax(axis=1) + 1),
        atom_frac_coord=torch.tensor(structure.frac_coords, dtype=torch.float32),
        atom_graph=ints(np.stack([center, neighbor], axis=1)),
        atom_graph_cutoff=converter.atom_graph_cutoff,
        neighbor_image=torch.tensor(image, dtype=torch.float32),
        directed2undirected=ints(undirected),
        undirected2directed=ints(first),
        bond_graph=ints(angles),
        bond_graph_cutoff=converter.bond_graph_cutoff,
        lattice=torch.tensor(structure.lattice.matrix, dtype=torch.float32),
    )


def undirected_edges(
    center: np.ndarray, neighbor: np.ndarray, image: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(undirected index of every directed edge, first and second directed edge of every
    undirected one, -1 for a missing second), numbered as CHGNet's converter numbers them: a
    directed edge (i -> j, image n) joins the bond of its reverse (j -> i, image -n) when
    that came earlier in the neighbour list, else it opens a new bond (numbered in order of
    opening)."""
    n = len(center)
    forward, reverse = edge_keys(center, neighbor, image)
    order = np.argsort(forward, kind="stable")
    at = np.minimum(np.searchsorted(forward, reverse, sorter=order), n - 1)
    partner = np.where(forward[order[at]] == reverse, order[at], -1)
    index = np.arange(n)
    opens = (partner < 0) | (partner > index)
    numbered = np.cumsum(opens) - 1
    undirected = np.where(opens, numbered, numbered[np.where(opens, index, partner)])
    return undirected, index[opens], partner[opens]


def edge_keys(
    center: np.ndarray, neighbor: np.ndarray, image: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One integer per directed edge (i, j, image n) and one for its reverse (j, i, -n), equal
    exactly when the edges are: the five numbers packed into one, or (for a cell whose images
    would not fit in 64 bits) numbered by sorting the rows."""
    sites = int(max(center.max(initial=0), neighbor.max(initial=0))) + 1
    span = int(np.abs(image).max(initial=0))
    reverse_image = -image
    try:
        dims = (sites, sites, *(2 * span + 1,) * 3)
        return (
            np.ravel_multi_index((center, neighbor, *(image + span).T), dims),
            np.ravel_multi_index((neighbor, center, *(reverse_image + span).T), dims),
        )
    except ValueError:  # too many combinations for one int64
        rows = np.concatenate(
            [
                np.column_stack([center, neighbor, image]),
                np.column_stack([neighbor, center, reverse_image]),
            ]
        )
        ids = np.unique(rows, axis=0, return_inverse=True)[1].ravel()
        return ids[: len(center)], ids[len(center) :]


def angle_list(
    center: np.ndarray,
    neighbor: np.ndarray,
    distance: np.ndarray,
    edges: tuple[np.ndarray, np.ndarray, np.ndarray],
    cutoff: float,
) -> np.ndarray:
    """(angles, 5) CHGNet's bond graph: for every bond up to ``cutoff`` (in bond order), at
    each of its two ends (the bond's directed edge from there), every other directed edge
    from that atom shorter than ``cutoff``, in CHGNet's order (edges grouped by neighbour,
    groups in order of first appearance). Rows: atom, bond, its directed edge, the other
    bond, the other directed edge."""
    undirected, first, second = edges
    bonds = np.flatnonzero(distance[first] <= cutoff)
    start, end = first[bonds], second[bonds]
    if (end < 0).any():
        raise ValueError("a bond without its reverse edge (the neighbour list is not symmetric)")
    # every atom's outgoing short edges, grouped by neighbour as CHGNet's nodes hold them
    pair = center * (neighbor.max(initial=0) + 1) + neighbor
    _, first_seen, inverse = np.unique(pair, return_index=True, return_inverse=True)
    short = np.flatnonzero(distance < cutoff)
    short = short[np.lexsort((short, first_seen[inverse[short]], center[short]))]
    ptr = np.searchsorted(center[short], np.arange(center.max(initial=0) + 2))
    slot_bond = np.repeat(bonds, 2)
    slot_edge = np.stack([start, end], axis=1).ravel()
    slot_atom = center[slot_edge]
    counts = ptr[slot_atom + 1] - ptr[slot_atom]
    rows = np.repeat(np.arange(len(slot_edge)), counts)
    offsets = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    other = short[ptr[slot_atom][rows] + offsets]
    keep = other != slot_edge[rows]
    rows, other = rows[keep], other[keep]
    return np.stack(
        [slot_atom[rows], slot_bond[rows], slot_edge[rows], undirected[other], other], axis=1
    ).reshape(-1, 5)


def atom_features(graphs: Sequence[Any], inputs: np.ndarray) -> list[np.ndarray]:
    """The atom features CHGNet returns with ``return_atom_feas`` (the output of the atom
    block before its last interaction block), one array per graph, from ``inputs`` (the
    batch's first-layer vectors) instead of pure-element embeddings. The forward stops
    there: the last block, the readout, the energy and the angle update that only feeds
    the skipped bond update are never computed."""
    import torch
    from chgnet.model.model import BatchedGraph

    with torch.no_grad():
        atoms = truncated_forward(
            BatchedGraph.from_graphs(
                graphs,
                bond_basis_expansion=model().bond_basis_expansion,
                angle_basis_expansion=model().angle_basis_expansion,
            ),
            torch.as_tensor(inputs, dtype=torch.float32),
        )
    sizes = [len(graph.atomic_number) for graph in graphs]
    return [a.numpy().astype(np.float64) for a in torch.split(atoms, sizes)]


def truncated_forward(g: Any, atoms: Any) -> Any:
    """CHGNet's ``_compute`` up to the atom output of block ``n_conv - 2``, from the batched
    graph ``g`` and the first-layer atom vectors ``atoms``."""
    net = model()
    bonds = net.bond_embedding(g.bond_bases_ag)
    weights_ag = net.bond_weights_ag(g.bond_bases_ag)
    weights_bg = net.bond_weights_bg(g.bond_bases_bg)
    has_angles = len(g.angle_bases) != 0
    angles = net.angle_embedding(g.angle_bases) if has_angles else None
    read = net.n_conv - 2  # the block whose atom output CHGNet returns as atom_fea
    for idx in range(read + 1):
        atoms = net.atom_conv_layers[idx](
            atom_feas=atoms,
            bond_feas=bonds,
            bond_weights=weights_ag,
            atom_graph=g.batched_atom_graph,
            directed2undirected=g.directed2undirected,
        )
        bond_layer = net.bond_conv_layers[idx]
        if idx == read or not has_angles or bond_layer is None:
            continue
        bonds = bond_layer(
            atom_feas=atoms,
            bond_feas=bonds,
            bond_weights=weights_bg,
            angle_feas=angles,
            bond_graph=g.batched_bond_graph,
        )
        angle_layer = net.angle_layers[idx]
        if angle_layer is not None and idx + 1 < read:
            angles = angle_layer(
                atom_feas=atoms, bond_feas=bonds, angle_feas=angles, bond_graph=g.batched_bond_graph
            )
    return atoms


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

    occs = [occupancies(s) for s in structures]
    graphs = [crystal_graph(s, o) for s, o in zip(structures, occs, strict=True)]
    out = np.empty((len(structures), 2 * DIM))
    for start in range(0, len(graphs), batch_size):
        stop = min(start + batch_size, len(graphs))
        inputs = np.concatenate([site_inputs(o) for o in occs[start:stop]])
        for k, fea in enumerate(atom_features(graphs[start:stop], inputs)):
            out[start + k] = pool(fea, occs[start + k])
    if not np.isfinite(out[:, :DIM]).all():
        raise ValueError("CHGNet features are not finite (sites on top of each other?)")
    return out


# ---------------------------------------------------------------- CHGNet's own path


def placeholder(structure: Structure, occ: np.ndarray) -> Structure:
    """The same positions, each site holding its most abundant element: only the graph
    (which atoms are bonded) is read from it; the element vectors are replaced."""
    species = [Element.from_Z(int(z) + 1) for z in occ.argmax(axis=1)]
    return Structure(structure.lattice, species, structure.frac_coords)


@contextmanager
def mixed_embedding(inputs: np.ndarray) -> Iterator[None]:
    """Within the block, CHGNet's element embedding returns ``inputs`` (the batch's
    first-layer vectors, in batch order) instead of pure elements."""
    import torch

    mixed = torch.as_tensor(inputs, dtype=torch.float32)

    def replace(_module: Any, _args: Any, out: Any) -> Any:
        if out.shape != mixed.shape:
            raise RuntimeError(f"embedding of shape {tuple(out.shape)}, not {mixed.shape}")
        return mixed

    handle = model().atom_embedding.register_forward_hook(replace)
    try:
        yield
    finally:
        handle.remove()


def reference_atom_features(structure: Structure) -> np.ndarray:
    """CHGNet's own path to what :func:`atom_features` computes, the reference it is tested
    and timed against: CHGNet's graph converter on :func:`placeholder` and its full forward
    pass (``task="e"``, ``return_atom_feas``) with the element embedding replaced."""
    import torch

    net = model()
    occ = occupancies(structure)
    graph = net.graph_converter(placeholder(structure, occ))
    with torch.no_grad(), mixed_embedding(site_inputs(occ)):
        pred = net([graph], task="e", return_atom_feas=True)
    return pred["atom_fea"][0].numpy().astype(np.float64)


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
