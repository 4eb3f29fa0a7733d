"""The ``holdout`` block of the config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class HoldoutSettings:
    """How many composed parent pairs the held-out model never sees (0: no held-out-cross
    validation), how many validation composites each gets, how many TRAIN photographs each parent of
    a held-out real cross keeps in that model's training set (0: all; a few make the real cross one
    of rare parents, as an evaluation table's unseen crosses are), and the seed of those draws."""

    pairs: int = 0
    per_pair: int = 12
    thin_parents: int = 0
    seed: int = 0

    @classmethod
    def from_config(cls, block: dict[str, Any]) -> HoldoutSettings:
        return cls(**block)
