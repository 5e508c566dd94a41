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


def significant(value: float | None, digits: int = 2) -> str:
    """A number to ``digits`` significant digits, or a dash when missing or not finite."""
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.{digits}g}"


def interval_text(interval: tuple[float, float] | list[float] | None, digits: int = 2) -> str:
    """``[lower, upper]`` to ``digits`` significant digits, or a dash when there is none."""
    if not interval:
        return "—"
    return f"[{significant(interval[0], digits)}, {significant(interval[1], digits)}]"


def sigma_text(
    sigma: float | None,
    interval: tuple[float, float] | list[float] | None = None,
    upper_bound: float | None = None,
    digits: int = 3,
) -> str:
    """A conductivity as MD gives it: ``686 [69, 6.9e+03]`` (the value, then its interval
    when there is one), or ``< 0.5`` when only an upper bound is known."""
    if sigma is None:
        return "< " + significant(upper_bound) if upper_bound is not None else "—"
    text = significant(sigma, digits)
    return f"{text} {interval_text(interval)}" if interval else text


def ea_text(ea: float | None, stderr: float | None = None) -> str:
    """An activation energy in eV with its standard error: ``0.113 ± 0.050``; a dash when
    there is none."""
    if ea is None:
        return "—"
    return f"{ea:.3f} ± {stderr:.3f}" if stderr is not None else f"{ea:.3f}"
