"""Atypicality: distance to the TRAIN photographs of the predicted class, on generated embeddings."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from hybridwing.model.atypicality import Atypicality, ValidationScale


def clusters(rng: np.random.Generator, centres: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    classes = np.repeat(np.arange(len(centres)), n)
    return centres[classes] + rng.normal(0, 0.35, (len(classes), centres.shape[1])), classes


def test_a_taxon_never_trained_on_is_atypical_and_known_ones_are_not():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, (5, 32))
    known, unseen = centres[:4], centres[4:]
    train, train_classes = clusters(rng, known, 40)
    val, val_classes = clusters(rng, known, 6)
    atypicality = Atypicality.fit(train, train_classes, val, val_classes, k=5)

    typical, typical_classes = clusters(rng, known, 25)
    novel, _ = clusters(rng, unseen, 100)
    nearest = np.argmax(novel @ known.T, axis=1)  # a classifier must call it one of the known taxa
    scores = np.concatenate([atypicality(typical, typical_classes), atypicality(novel, nearest)])
    is_novel = np.r_[np.zeros(len(typical)), np.ones(len(novel))]
    assert roc_auc_score(is_novel, scores) > 0.95
    assert 0.7 < np.median(atypicality(typical, typical_classes)) < 1.3, "typical photographs sit near 1"


def test_a_class_with_few_validation_photographs_borrows_the_pooled_median():
    rng = np.random.default_rng(1)
    centres = rng.normal(0, 1, (2, 16))
    train, train_classes = clusters(rng, centres, 30)
    val, val_classes = clusters(rng, centres, 5)
    few = np.r_[val_classes[val_classes == 0], val_classes[val_classes == 1][:2]]
    atypicality = Atypicality.fit(train, train_classes, np.r_[val[val_classes == 0], val[val_classes == 1][:2]], few)
    assert set(atypicality.class_medians) == {0}
    assert np.isfinite(atypicality(val, val_classes)).all()


def test_the_validation_scale_puts_the_median_at_0_and_the_95th_percentile_at_1():
    reference = np.arange(101, dtype=float)
    scale = ValidationScale.fit(reference)
    assert np.allclose(scale(np.array([50.0, 95.0, 140.0])), [0.0, 1.0, 2.0])
