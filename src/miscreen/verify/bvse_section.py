"""The verify stage's report section: the BVSE barriers of the checked candidates."""

from __future__ import annotations

import jinja2
import pandas as pd

from miscreen import schema as S
from miscreen.formatting import fmt
from miscreen.verify.bvse import BVSE_E1D, BVSE_E2D

SECTION = jinja2.Environment(autoescape=True).from_string(
    """<h2 id="bvse">Physics check: bond-valence Li migration barriers</h2>
<p>The top {{ top }} ranked candidates with a structure were checked by bond-valence site
energy (BVSE): the lowest energy at which Li paths percolate through the cell in one, two
and three dimensions. {{ rows|length }} got barriers. Lower is better; fast Li conductors
typically have 3-D barriers well under 0.5 eV. On OBELiX's CIFs the 3-D barrier ranks the
measured conductivities with Spearman −0.45 (<code>benchmarks/bvse.py</code>): a coarse,
independent check of the model, not a replacement for it.</p>
<table><tr><th>rank</th><th>formula</th><th>id</th><th>pred. log10 σ</th><th>1-D (eV)</th>
<th>2-D (eV)</th><th>3-D (eV)</th><th>disorder treated as</th></tr>
{% for r in rows %}<tr><td class="num">{{ r.rank }}</td><td>{{ r.formula }}</td><td>{{ r.id }}
</td><td class="num">{{ r.pred }}</td><td class="num">{{ r.e1 }}</td><td class="num">{{ r.e2 }}
</td><td class="num">{{ r.e3 }}</td><td>{{ r.method }}</td></tr>{% endfor %}</table>
<p class="note">BVSE as in softBV / bvlain (S. Chen, S. Adams, Acta Cryst. B73, 1 (2017);
bvlain by A. Dembitskiy), with bvlain's bond-valence parameters; partial occupancies enter
the framework weighted by occupancy. Rows without a barrier are listed in
<code>failures.csv</code> with the reason.</p>
"""
)


def bvse_section(candidates: pd.DataFrame, top: int) -> str:
    """HTML fragment for the report: the checked candidates in rank order."""
    checked = candidates[candidates.get(S.BVSE_METHOD, pd.Series(dtype=str)).notna()]
    checked = checked.sort_values(S.RANK, na_position="last")
    rows = [
        {
            "rank": "" if pd.isna(r[S.RANK]) else int(r[S.RANK]),
            "formula": r[S.FORMULA],
            "id": r[S.ID],
            "pred": fmt(r[S.PRED]),
            "e1": fmt(r.get(BVSE_E1D)),
            "e2": fmt(r.get(BVSE_E2D)),
            "e3": fmt(r.get(S.BVSE_E3D)),
            "method": r.get(S.BVSE_METHOD),
        }
        for r in checked.to_dict("records")
    ]
    return SECTION.render(rows=rows, top=top)
