"""The campaign log: one typed record per round, stored as JSON lines (``campaign.jsonl``).

A round says what was suggested, what was measured (log10 S/cm; ``None`` while a result is
pending), the model's metrics when it chose, and how many targets were found so far.
Records round-trip exactly: ``read_campaign(write_campaign(p, rs)) == rs``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from miscreen import atomic_io

VERSION = 1


def _finite_or_none(value: object, what: str) -> float | None:
    if value is None:
        return None
    out = float(value)  # type: ignore[arg-type]
    if not math.isfinite(out):
        raise ValueError(f"{what} must be a finite number or None, got {value!r}")
    return out


@dataclass(frozen=True)
class CampaignRound:
    """One round of a campaign (values are coerced to their types on construction)."""

    round: int
    acquisition: str
    suggested: tuple[str, ...]
    measured: dict[str, float | None] = field(default_factory=dict)
    metrics: dict[str, float | None] = field(default_factory=dict)
    n_measured: int = 0
    found: dict[str, int] = field(default_factory=dict)
    seed: int | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if int(self.round) < 0:
            raise ValueError(f"round must be >= 0, got {self.round}")
        set_ = object.__setattr__
        set_(self, "round", int(self.round))
        set_(self, "acquisition", str(self.acquisition))
        set_(self, "suggested", tuple(str(s) for s in self.suggested))
        set_(
            self,
            "measured",
            {str(k): _finite_or_none(v, f"measured[{k!r}]") for k, v in self.measured.items()},
        )
        set_(
            self,
            "metrics",
            {str(k): _finite_or_none(v, f"metrics[{k!r}]") for k, v in self.metrics.items()},
        )
        set_(self, "n_measured", int(self.n_measured))
        set_(self, "found", {str(k): int(v) for k, v in self.found.items()})
        set_(self, "seed", None if self.seed is None else int(self.seed))
        set_(self, "note", str(self.note))

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["suggested"] = list(self.suggested)
        return {"version": VERSION, **d}

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> CampaignRound:
        d = dict(d)
        version = d.pop("version", VERSION)
        if version != VERSION:
            raise ValueError(f"campaign log version {version!r} is not {VERSION}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown field(s) {unknown}")
        return cls(**d)  # type: ignore[arg-type]


def dumps(rounds: Iterable[CampaignRound]) -> str:
    """JSON lines text of the rounds (strict JSON: no NaN)."""
    return "".join(json.dumps(r.to_dict(), allow_nan=False) + "\n" for r in rounds)


def loads(text: str, where: str = "campaign log") -> list[CampaignRound]:
    """Parse JSON lines text; ``ValueError`` naming the line that fails."""
    out: list[CampaignRound] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(CampaignRound.from_dict(json.loads(line)))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{where} line {n}: {exc}") from None
    return out


def write_campaign(path: Path, rounds: Iterable[CampaignRound]) -> Path:
    """Write the whole log atomically (through :mod:`miscreen.atomic_io`)."""
    return atomic_io.write_text(Path(path), dumps(rounds))


def read_campaign(path: Path) -> list[CampaignRound]:
    """Every round in ``path``, in file order."""
    path = Path(path)
    return loads(path.read_text(encoding="utf-8"), where=str(path))


def append_round(path: Path, record: CampaignRound) -> Path:
    """Add one round to the log (rewritten atomically); its number must follow the last."""
    path = Path(path)
    rounds = read_campaign(path) if path.exists() else []
    if rounds and record.round <= rounds[-1].round:
        raise ValueError(
            f"{path}: round {record.round} does not follow the last logged round {rounds[-1].round}"
        )
    return write_campaign(path, [*rounds, record])
