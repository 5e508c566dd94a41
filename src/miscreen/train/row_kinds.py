"""Row kinds and the trained result: what each input row has (a structure; a cell; a
composition alone), which model may serve it, and :class:`TrainResult`, the fitted models
with their routing."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from miscreen import schema as S
from miscreen.train.persist import TrainedModel

COMPOSITION_MODEL = "composition"  # the composition alone (preset "composition")
CELL_MODEL = "cell"  # composition + space group and lattice (preset "cell")
STRUCTURE_MODEL = "structure"  # everything, positions included (the run's preset)
STRUCTURE_ROWS = "structure_rows"
CELL_ROWS = "cell_rows"
COMPOSITION_ROWS = "composition_rows"
ROW_KINDS = (STRUCTURE_ROWS, CELL_ROWS, COMPOSITION_ROWS)
MODEL_NAMES = (STRUCTURE_MODEL, CELL_MODEL, COMPOSITION_MODEL)
# the models a row of each kind may use: only models whose features the row has
USABLE = {
    STRUCTURE_ROWS: (STRUCTURE_MODEL, CELL_MODEL, COMPOSITION_MODEL),
    CELL_ROWS: (CELL_MODEL, COMPOSITION_MODEL),
    COMPOSITION_ROWS: (COMPOSITION_MODEL,),
}


def row_kinds(records: pd.DataFrame) -> pd.Series:
    """Each row's input kind: a structure; no structure but a space group or lattice (as
    OBELiX gives for every row); or a composition alone (a list of formulas)."""
    cell = pd.Series(False, index=records.index)
    for col in (S.SPACEGROUP, *S.LATTICE):
        if col in records:
            cell |= pd.to_numeric(records[col], errors="coerce").notna()
    kinds = pd.Series(COMPOSITION_ROWS, index=records.index, dtype=object)
    kinds[cell] = CELL_ROWS
    kinds[S.has_structure(records)] = STRUCTURE_ROWS
    return kinds


@dataclass(frozen=True)
class TrainResult:
    """The fitted models by name, the routing of row kinds to them, and training failures.

    ``routing[kind]`` is ``{"model": name, "cv_mae": {name: mae}, "rows": n}``.
    """

    models: dict[str, TrainedModel]
    routing: dict[str, dict]
    failures: pd.DataFrame = field(default_factory=S.empty_failures)

    def for_kind(self, kind: str) -> TrainedModel:
        """The model that serves ``kind`` (``structure_rows`` or ``composition_rows``)."""
        return self.models[self.routing[kind]["model"]]

    @property
    def cv(self) -> dict[str, dict]:
        """Cross-validation metrics per model."""
        return {name: m.meta["metrics"] for name, m in self.models.items()}

    @property
    def routed_cv(self) -> tuple[float, int]:
        """(MAE, rows) of the out-of-fold predictions of the whole routed system: each
        training row by the model its kind is served by."""
        total = rows = 0
        for choice in self.routing.values():
            err = (choice.get("cv_mae") or {}).get(choice["model"])
            if choice["rows"] and err is not None:
                total += err * choice["rows"]
                rows += choice["rows"]
        return (total / rows if rows else float("nan")), rows
