"""The example structures that ship with pymatgen (``pymatgen/util/structures/<name>.json``),
read through the same data-only decoder as every other structure."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from miscreen import schema as S
from miscreen.fetch.parsing import structure_from_json
from miscreen.fetch.records import reason_of, record_frames, structure_record

PYMATGEN_EXAMPLES = ("Li10GeP2S12", "LiFePO4", "Li2O", "Li3V2(PO4)3")


def load_pymatgen_examples(
    names: Iterable[str] = PYMATGEN_EXAMPLES,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Structures bundled with pymatgen -> (records, failures)."""
    import pymatgen.util as pmg_util

    folder = Path(pmg_util.__file__).parent / "structures"
    rows, failures = [], []
    for name in names:
        path = folder / f"{name}.json"
        try:
            structure = structure_from_json(path.read_text(encoding="utf-8"))
            rows.append(structure_record(f"pymatgen:{name}", "pymatgen", structure))
        except Exception as exc:
            failures.append(S.failure(name, "pymatgen", "load", f"{path}: {reason_of(exc)}"))
    return record_frames(rows, failures)
