"""How unlike the training photographs of its predicted subspecies a photograph is.

The atypicality of a photograph is the mean cosine distance of its embedding to the `k` nearest
TRAIN photographs of its predicted subspecies, divided by the median of that distance among the
validation split's non-hybrids of the subspecies (or of all subspecies, where it has fewer than
`MIN_REFERENCE`). A hybrid of two rare parents can look like one parent without looking like a
typical one; a photograph of a taxon never trained on looks like none.

Scores are compared on one scale (`ValidationScale`): 0 at the validation non-hybrids' median and 1
at their 95th percentile, so that the larger of two scaled scores is a score too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: A subspecies needs this many validation non-hybrids for a median of its own.
MIN_REFERENCE = 3


def unit_rows(features: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.where(norms > 0, norms, 1.0)


@dataclass(frozen=True)
class ValidationScale:
    """A score rescaled by its validation non-hybrids: 0 at their median, 1 at their 95th percentile."""

    median: float
    p95: float

    @classmethod
    def fit(cls, non_hybrid_scores: np.ndarray) -> ValidationScale:
        median, p95 = np.quantile(np.asarray(non_hybrid_scores, dtype=np.float64), [0.5, 0.95])
        return cls(float(median), float(p95))

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return (np.asarray(scores, dtype=np.float64) - self.median) / max(self.p95 - self.median, 1e-12)


@dataclass(frozen=True)
class Atypicality:
    """The TRAIN embeddings by class and each class's validation median distance."""

    train: np.ndarray
    train_classes: np.ndarray
    class_medians: dict[int, float]
    pooled_median: float
    k: int

    @classmethod
    def fit(
        cls,
        train: np.ndarray,
        train_classes: np.ndarray,
        val: np.ndarray,
        val_classes: np.ndarray,
        k: int = 5,
    ) -> Atypicality:
        """From the TRAIN photographs' embeddings and the validation non-hybrids' (their true classes)."""
        model = cls(unit_rows(train), np.asarray(train_classes), {}, 1.0, k)
        distances = model.distances(val, np.asarray(val_classes))
        medians = {
            int(c): float(np.median(distances[val_classes == c]))
            for c in np.unique(val_classes)
            if (val_classes == c).sum() >= MIN_REFERENCE
        }
        return cls(model.train, model.train_classes, medians, float(np.median(distances)), k)

    def distances(self, features: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """Mean cosine distance of each row to the `k` nearest TRAIN rows of its class (inf where
        the class has no TRAIN row)."""
        features = unit_rows(features)
        out = np.full(len(features), np.inf)
        for c in np.unique(classes):
            rows, train = classes == c, self.train[self.train_classes == c]
            if len(train):
                distance = 1.0 - features[rows] @ train.T
                nearest = np.sort(distance, axis=1)[:, : min(self.k, len(train))]
                out[rows] = nearest.mean(axis=1)
        return out

    def __call__(self, features: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """Each row's distance to its class's TRAIN photographs over the class's validation median."""
        classes = np.asarray(classes)
        medians = np.array([self.class_medians.get(int(c), self.pooled_median) for c in classes])
        return self.distances(features, classes) / np.maximum(medians, 1e-12)
