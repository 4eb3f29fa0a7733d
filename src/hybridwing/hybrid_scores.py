"""Hybrid scores from class probabilities (the hybrid class is the last column), and the threshold
that calls a score a hybrid: shared by training (the model folder stores its threshold), scoring,
prediction and the review."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: The share of non-hybrids a threshold keeps at or below it (the challenge's 95%).
NON_HYBRID_RECALL = 0.95
#: Above this top-1 probability the probability-filtering score trusts the prediction.
FILTER_CONFIDENT = 0.75


def threshold_rank(n: int, recall: float = NON_HYBRID_RECALL) -> int:
    """0-based position, in ascending order, of the threshold among n non-hybrid scores."""
    return max(math.ceil(round(recall * n, 9)), 1) - 1


def threshold_at(non_hybrid_scores: np.ndarray, recall: float = NON_HYBRID_RECALL) -> float:
    """The lowest score s with at least `recall` of the non-hybrids scoring <= s."""
    ordered = np.sort(np.asarray(non_hybrid_scores, dtype=np.float64))
    return float(ordered[threshold_rank(len(ordered), recall)])


def top_two(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Indices and probabilities of the two most likely non-hybrid classes of each row. With one
    non-hybrid class the second is index -1 with probability 0."""
    subspecies = probabilities[:, :-1]
    if subspecies.shape[1] < 2:
        n = len(subspecies)
        return np.zeros(n, int), subspecies[:, 0], np.full(n, -1), np.zeros(n)
    order = np.argsort(-subspecies, axis=1, kind="stable")[:, :2]
    rows = np.arange(len(subspecies))
    return order[:, 0], subspecies[rows, order[:, 0]], order[:, 1], subspecies[rows, order[:, 1]]


@dataclass(frozen=True)
class Probabilities:
    """What every score is made of, per row: the hybrid class's probability, the two most likely
    non-hybrid classes' probabilities, and the normalised entropy of the whole distribution."""

    p_hybrid: np.ndarray
    top1: np.ndarray
    top2: np.ndarray
    entropy: np.ndarray


#: The hybrid scores, each named once: ``score.method`` chooses the one that calls, thresholds and
#: is submitted; the others are written beside it for comparison.
SCORES: dict[str, Callable[[Probabilities], np.ndarray]] = {
    # The design's top-2 score: a hybrid either has its own class or splits its mass over two parents.
    "hybrid_score": lambda q: np.maximum(q.p_hybrid, 1.0 - (q.top1 - q.top2)),
    "one_minus_max_p": lambda q: 1.0 - q.top1,
    "p_hybrid": lambda q: q.p_hybrid,
    "entropy": lambda q: q.entropy,
    # A confident call is not a hybrid, and mass shared by two parents is.
    "probability_filter": lambda q: np.where(q.top1 > FILTER_CONFIDENT, 1.0 - q.top1, q.top1 + q.top2),
}
SCORE_NAMES = tuple(SCORES)
#: ``score.method``'s default, and the score of a model folder that names none.
DEFAULT_SCORE = SCORE_NAMES[0]


def check_score(name: str) -> str:
    """`name` if it is a hybrid score, else a ValueError listing them."""
    if name not in SCORES:
        raise ValueError(f"unknown hybrid score {name!r}: one of {', '.join(SCORE_NAMES)}")
    return name


def comparison_score(method: str) -> str:
    """The score drawn beside `method` in the figures: 1 - max p, or the default when that is `method`."""
    return "one_minus_max_p" if method != "one_minus_max_p" else DEFAULT_SCORE


def hybrid_scores(probabilities: np.ndarray) -> pd.DataFrame:
    """Every score of `SCORES`, one column each, per row of class probabilities (hybrid last); top1
    and top2 are over the non-hybrid classes."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[1] < 2:
        raise ValueError("probabilities need a column per class, the hybrid class last, and at least one other class")
    _, top1, _, top2 = top_two(probabilities)
    safe = np.clip(probabilities, 1e-12, 1.0)
    entropy = -(probabilities * np.log(safe)).sum(axis=1) / np.log(probabilities.shape[1])
    parts = Probabilities(probabilities[:, -1], top1, top2, entropy)
    return pd.DataFrame({name: score(parts) for name, score in SCORES.items()})
