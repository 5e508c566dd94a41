"""Suggest the next experiments by sequential learning on the model's uncertainty.

Ling et al., Integrating Materials and Manufacturing Innovation 6, 207 (2017): a random
forest's spread plus an acquisition function (MEI, MLI, MU) found target materials with
about 3x fewer experiments than random picks. This stage holds the pure core:

- ``acquisition``: scores from predicted mean and sd (``ACQUISITIONS``: mei, mli, ucb, ei,
  mu, random);
- ``selection``: :func:`suggest_batch` (diverse batches, never a measured row, each pick with
  its interval and a "why") and :func:`nearest_measured`;
- ``prior``: a prior for fast conduction that needs no label (anion polarizability, Li
  fraction, a BVSE barrier where known); until a fast conductor is measured it ranks the
  pool instead of the acquisition (the cold start, ``physics_prior`` of
  :func:`suggest_batch`);
- ``campaign``: the typed round log stored as ``campaign.jsonl``;
- ``next_round``: :func:`suggest_next`, suggestions from a screened run's ranked candidates
  (returned as data; the wiring, ``miscreen.pipeline.suggestion``, writes them).

It meets the other stages through ``miscreen.schema`` columns; ``miscreen.pipeline`` wires it.
"""

from __future__ import annotations

from miscreen.suggest.acquisition import ACQUISITIONS, KAPPA, get_acquisition, ranking, score
from miscreen.suggest.campaign import (
    CampaignRound,
    append_round,
    read_campaign,
    write_campaign,
)
from miscreen.suggest.selection import (
    ACQ_VALUE,
    CHEMSYS,
    MEAN,
    SD,
    WHY,
    chemical_system,
    nearest_measured,
    select_diverse,
    suggest_batch,
)

__all__ = [
    "ACQUISITIONS",
    "ACQ_VALUE",
    "CHEMSYS",
    "KAPPA",
    "MEAN",
    "SD",
    "WHY",
    "CampaignRound",
    "append_round",
    "chemical_system",
    "get_acquisition",
    "nearest_measured",
    "ranking",
    "read_campaign",
    "score",
    "select_diverse",
    "suggest_batch",
    "write_campaign",
]
