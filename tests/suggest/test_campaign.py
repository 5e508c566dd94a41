"""The campaign log: typed rounds written to and read from JSON lines."""

from __future__ import annotations

import json

import pytest

from miscreen.suggest import CampaignRound, append_round, read_campaign, write_campaign


def _rounds() -> list[CampaignRound]:
    return [
        CampaignRound(
            round=0,
            acquisition="mli",
            suggested=("a", "b"),
            measured={"a": -4.123456789012345, "b": -15.0},
            n_measured=2,
            found={"fast": 0},
            seed=7,
            note="initial set",
        ),
        CampaignRound(
            round=1,
            acquisition="mli",
            suggested=("c", "d"),
            measured={"c": 0.1 + 0.2, "d": None},  # d still pending
            metrics={"mae_unmeasured": 1.0 / 3.0, "spearman_unmeasured": None},
            n_measured=3,
            found={"fast": 1},
        ),
    ]


def test_round_trip_is_exact(tmp_path) -> None:
    rounds = _rounds()
    path = write_campaign(tmp_path / "campaign.jsonl", rounds)
    back = read_campaign(path)
    assert back == rounds
    assert back[1].measured["c"] == 0.1 + 0.2  # floats survive bit for bit
    assert isinstance(back[0].suggested, tuple)
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["version"] == 1


def test_append_follows_the_last_round(tmp_path) -> None:
    path = tmp_path / "campaign.jsonl"
    first, second = _rounds()
    append_round(path, first)
    append_round(path, second)
    assert read_campaign(path) == [first, second]
    with pytest.raises(ValueError, match="round 1 does not follow the last logged round 1"):
        append_round(path, second)
    assert not list(tmp_path.glob(".campaign.jsonl.*"))  # no temporary files left


def test_non_finite_values_are_refused() -> None:
    with pytest.raises(ValueError, match=r"metrics\['mae'\] must be a finite number"):
        CampaignRound(round=1, acquisition="ei", suggested=(), metrics={"mae": float("nan")})


def test_a_bad_line_is_named(tmp_path) -> None:
    path = write_campaign(tmp_path / "campaign.jsonl", _rounds())
    path.write_text(path.read_text() + '{"round": 2, "acquisition": "ei", "colour": 1}\n')
    with pytest.raises(ValueError, match=r"campaign.jsonl line 3: unknown field\(s\) \['colour'\]"):
        read_campaign(path)
