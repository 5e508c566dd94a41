"""A module no code path may import: the hostile structure payloads of the fuzz tests name
it (as ``@module``), so finding it in ``sys.modules`` means a decoder imported a module
named in input. It holds what such payloads ask for: a dataclass and a callable."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class Trap:
    x: int = 0


def fire() -> None:
    raise AssertionError("a callable named in input was called")
