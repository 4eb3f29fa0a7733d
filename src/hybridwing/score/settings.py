"""The ``score`` block of the config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hybridwing.hybrid_scores import DEFAULT_SCORE, check_score


@dataclass(frozen=True)
class ScoreSettings:
    """`method`: the hybrid score that calls (stored in the model folder by the fine-tune);
    `batch_size`: images per batch; `bootstrap` resamples (seeded by `seed`) for the 90% intervals;
    `explain`: photographs called hybrid whose explanation is drawn, highest score first."""

    method: str = DEFAULT_SCORE
    batch_size: int = 64
    bootstrap: int = 1000
    seed: int = 0
    explain: int = 8

    @classmethod
    def from_config(cls, block: dict[str, Any]) -> ScoreSettings:
        return cls(
            method=check_score(block["method"]),
            batch_size=int(block["batch_size"]),
            bootstrap=int(block["bootstrap"]),
            seed=int(block["seed"]),
            explain=int(block["explain"]),
        )
