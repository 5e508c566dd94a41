"""How numbers and figures appear in reports: one copy shared by the report and by the
stages that contribute report sections (verify, cases)."""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from miscreen import schema as S


def fmt(value: object, digits: int = 2) -> str:
    """A number for a table cell: ``digits`` decimals, or a dash when missing."""
    v = S.as_float(value)
    return "—" if math.isnan(v) else f"{v:.{digits}f}"


def save_figure(fig: plt.Figure, folder: Path | None, name: str) -> str:
    """Write ``<folder>/<name>.png`` and ``.svg`` (when a folder is given), close the figure
    and return the PNG as base64 for embedding."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.png").write_bytes(buf.getvalue())
        fig.savefig(folder / f"{name}.svg", format="svg", bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")
