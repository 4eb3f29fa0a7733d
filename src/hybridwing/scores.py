"""Hybrid scores from class probabilities (the hybrid class is the last column), and the threshold
that calls a score a hybrid: shared by training (the model folder stores its threshold), scoring,
prediction and the review."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

#: The pipeline's score first; the others are written beside it for comparison.
SCORE_NAMES = ("hybrid_score", "one_minus_max_p", "p_hybrid", "entropy", "probability_filter")
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


def hybrid_scores(probabilities: np.ndarray) -> pd.DataFrame:
    """Per row: ``hybrid_score = max(p_hybrid, 1 - (top1 - top2))`` with top1/top2 over the
    non-hybrid classes; ``one_minus_max_p`` (1 - top1), ``p_hybrid``, the normalised entropy of
    the whole distribution, and ``probability_filter`` (1 - top1 when top1 > 0.75, else
    top1 + top2: a confident call is not a hybrid, and mass shared by two parents is)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[1] < 2:
        raise ValueError("probabilities need a column per class, the hybrid class last, and at least one other class")
    _, top1, _, top2 = top_two(probabilities)
    p_hybrid = probabilities[:, -1]
    safe = np.clip(probabilities, 1e-12, 1.0)
    entropy = -(probabilities * np.log(safe)).sum(axis=1) / np.log(probabilities.shape[1])
    return pd.DataFrame(
        {
            "hybrid_score": np.maximum(p_hybrid, 1.0 - (top1 - top2)),
            "one_minus_max_p": 1.0 - top1,
            "p_hybrid": p_hybrid,
            "entropy": entropy,
            "probability_filter": np.where(top1 > FILTER_CONFIDENT, 1.0 - top1, top1 + top2),
        }
    )
