"""The HDR butterfly-hybrid challenge's evaluation.

Species A (``major`` + ``minor`` rows) and the ``mimic`` rows are scored apart. In each group the
threshold is the lowest score at which at least 95% of the non-hybrids score at or below it, and an
image is called a hybrid when its score is above it. The challenge score is the harmonic mean of the
hybrid recalls of the major, minor and mimic rows. Bootstrap intervals resample images within each
(part, hybrid or not) stratum, so every resample keeps the table's make-up.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from hybridwing.hybrid_scores import threshold_at, threshold_rank

PARTS = ("major", "minor", "mimic")
GROUPS = {"species_a": ("major", "minor"), "mimic": ("mimic",)}


def harmonic_mean(values: list[float]) -> float:
    return 0.0 if min(values) <= 0 else len(values) / sum(1.0 / v for v in values)


def _recalls(
    scores: np.ndarray, is_hybrid: np.ndarray, parts: np.ndarray
) -> tuple[dict[str, float | None], dict[str, float | None]]:
    thresholds: dict[str, float | None] = {}
    recalls: dict[str, float | None] = {}
    for group, members in GROUPS.items():
        in_group = np.isin(parts, members)
        negatives = scores[in_group & ~is_hybrid]
        thresholds[group] = threshold_at(negatives) if len(negatives) else None
        for part in members:
            positives = scores[(parts == part) & is_hybrid]
            defined = len(positives) and thresholds[group] is not None
            recalls[part] = float((positives > thresholds[group]).mean()) if defined else None
    return thresholds, recalls


def _auc(function, is_hybrid: np.ndarray, scores: np.ndarray) -> float | None:
    return float(function(is_hybrid, scores)) if 0 < is_hybrid.sum() < len(is_hybrid) else None


def _bootstrap(
    scores: np.ndarray, is_hybrid: np.ndarray, parts: np.ndarray, scored: list[str], n: int, seed: int
) -> dict[str, list[float]]:
    """90% intervals of each scored part's recall and of the challenge score."""
    rng = np.random.default_rng(seed)
    recalls = {}
    for group, members in GROUPS.items():
        members = [part for part in members if part in scored]
        if not members:
            continue
        negatives = scores[np.isin(parts, GROUPS[group]) & ~is_hybrid]
        resampled = np.sort(negatives[rng.integers(0, len(negatives), (n, len(negatives)))], axis=1)
        thresholds = resampled[:, threshold_rank(len(negatives))]
        for part in members:
            positives = scores[(parts == part) & is_hybrid]
            drawn = positives[rng.integers(0, len(positives), (n, len(positives)))]
            recalls[part] = (drawn > thresholds[:, None]).mean(axis=1)
    stacked = np.stack([recalls[part] for part in scored])
    challenge = np.where(stacked.min(axis=0) > 0, len(scored) / (1.0 / np.maximum(stacked, 1e-12)).sum(axis=0), 0.0)
    intervals = {f"{part}_recall_ci90": recalls[part] for part in scored} | {"challenge_score_ci90": challenge}
    return {
        name: [float(np.quantile(values, 0.05)), float(np.quantile(values, 0.95))] for name, values in intervals.items()
    }


def hybrid_metrics(scores, is_hybrid, parts, bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Challenge score, per-part recalls with bootstrap 90% intervals, thresholds, PRC-AUC and ROC-AUC.

    A part with no hybrids (or whose group has no non-hybrids) has recall None and is left out of
    the harmonic mean; ``parts_scored`` names the parts that were used.
    """
    scores = np.asarray(scores, dtype=np.float64)
    is_hybrid = np.asarray(is_hybrid, dtype=bool)
    parts = np.asarray(parts, dtype=object)
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise ValueError(f"unknown part(s) {unknown}: every row must be one of {PARTS}")
    thresholds, recalls = _recalls(scores, is_hybrid, parts)
    scored = [part for part in PARTS if recalls[part] is not None]
    metrics: dict[str, Any] = {
        "challenge_score": harmonic_mean([recalls[p] for p in scored]) if scored else None,
        **{f"{part}_recall": recalls[part] for part in PARTS},
        "parts_scored": scored,
        **{f"threshold_{group}": value for group, value in thresholds.items()},
        "prc_auc": _auc(average_precision_score, is_hybrid, scores),
        "roc_auc": _auc(roc_auc_score, is_hybrid, scores),
        "n_images": int(len(scores)),
        "n_hybrids": int(is_hybrid.sum()),
        **{f"n_{part}_hybrids": int(((parts == part) & is_hybrid).sum()) for part in PARTS},
    }
    if scored and bootstrap:
        metrics |= _bootstrap(scores, is_hybrid, parts, scored, bootstrap, seed)
    return metrics


def subspecies_metrics(truth: pd.Series, predicted: pd.Series) -> dict[str, Any]:
    """Accuracy and macro-F1 (over the true subspecies) of non-hybrids of known subspecies."""
    if truth.empty:
        return {"subspecies_accuracy": None, "subspecies_macro_f1": None, "n_subspecies_images": 0}
    labels = sorted(set(truth))
    return {
        "subspecies_accuracy": float((truth.to_numpy() == predicted.to_numpy()).mean()),
        "subspecies_macro_f1": float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0)),
        "n_subspecies_images": int(len(truth)),
    }
