"""The validation that can see crosses never trained on.

The training table shows one real cross, so its own validation split cannot tell whether a setting
helps with the crosses an evaluation table brings. A second model is trained on the same balanced
set less every hybrid of some held-out crosses (the real crosses, and composed pairs with rare
parents, see `balance.crosses.holdout_pairs`); it is scored on what it never saw: every real hybrid
photograph of the training table, and composites of the held-out pairs made from val/test
photographs, against the validation split's non-hybrids. For each held-out cross: the recall at the
threshold that keeps 95% of those non-hybrids below it, ROC-AUC, and how often the two most likely
subspecies are the true parents.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from hybridwing.balance.balance import composable_images, training_images, write_composites
from hybridwing.balance.crosses import (
    HoldoutSettings,
    holdout_pairs,
    pair_key,
    plan_validation_crosses,
    thinned_parents,
)
from hybridwing.classes import HYBRID_CLASS
from hybridwing.data.split import SPLITS
from hybridwing.score.figures import unseen_cross_figure
from hybridwing.score.predictor import Predictor
from hybridwing.score.steps import predict_table
from hybridwing.scores import SCORE_NAMES, threshold_at
from hybridwing.segment.mask_settings import MaskSettings

log = logging.getLogger(__name__)


def holdout_pairs_step(
    metadata_path: str,
    splits_path: str,
    qc_path: str,
    wings_path: str,
    pairs_path: str,
    thinned_path: str,
    settings: dict[str, Any],
    seed: int,
) -> None:
    """The holdout_pairs rule: which crosses the held-out model never sees, and which TRAIN
    photographs of the real crosses' parents it leaves out (``thin_parents``)."""
    holdout = HoldoutSettings.from_config(settings)
    images = training_images(metadata_path, splits_path, qc_path, wings_path, splits=SPLITS)
    held = images[(images["split"] != "train") & (images["label"] != HYBRID_CLASS)]
    pairs = holdout_pairs(images, composable_images(held), holdout.pairs)
    pairs.to_csv(pairs_path, index=False)
    log.info("held-out crosses:\n%s", pairs.to_string(index=False))
    thinned = thinned_parents(images, pairs, holdout.thin_parents, seed)
    thinned.to_csv(thinned_path, index=False)
    if len(thinned):
        log.info(
            "the real crosses' parents keep %d TRAIN photographs each; left out: %s",
            holdout.thin_parents,
            thinned["label"].value_counts().sort_index().to_dict(),
        )


def unseen_cross_rows(
    images: pd.DataFrame,
    pairs: pd.DataFrame,
    settings: HoldoutSettings,
    mask_settings: MaskSettings,
    seed: int,
    out_dir: str | Path,
) -> pd.DataFrame:
    """What the held-out model is scored on: the validation split's non-hybrids (cross empty), every
    real hybrid photograph of the training table, and the composites of the composed pairs
    (written under `out_dir`). Columns: image_id, path, is_hybrid, cross (``a x b``), kind."""
    negatives = images[(images["split"] == "val") & (images["label"] != HYBRID_CLASS)]
    real = images[images["label"] == HYBRID_CLASS]
    held = images[(images["split"] != "train") & (images["label"] != HYBRID_CLASS)]
    held = held[held["image_id"].isin(composable_images(held))]
    composites = write_composites(
        held, plan_validation_crosses(held, pairs, settings.per_pair, seed), mask_settings, out_dir
    )

    def cross_of(first: pd.Series, second: pd.Series) -> list[str]:
        return [" x ".join(pair_key(a, b)) for a, b in zip(first, second)]

    return pd.concat(
        [
            pd.DataFrame(
                {
                    "image_id": negatives["image_id"],
                    "path": negatives["wings"],
                    "is_hybrid": False,
                    "cross": "",
                    "kind": "non-hybrid",
                }
            ),
            pd.DataFrame(
                {
                    "image_id": real["image_id"],
                    "path": real["wings"],
                    "is_hybrid": True,
                    "cross": cross_of(real["parent_1"], real["parent_2"]),
                    "kind": "real",
                }
            ),
            pd.DataFrame(
                {
                    "image_id": composites["image_id"],
                    "path": composites["path"],
                    "is_hybrid": True,
                    "cross": cross_of(composites["parent_1"], composites["parent_2"]),
                    "kind": "composed",
                }
            ),
        ],
        ignore_index=True,
    )


def cross_metrics(predictions: pd.DataFrame, score: str) -> dict[str, Any]:
    """Per held-out cross: images, recall at the 95% non-hybrid threshold, ROC-AUC against the
    non-hybrids, and the share whose two most likely subspecies are its parents; then the mean
    recall and AUC over the crosses (and over the real and the composed ones)."""
    negatives = predictions.loc[~predictions["is_hybrid"], score].to_numpy()
    threshold = threshold_at(negatives) if len(negatives) else None
    crosses = {}
    for (cross, kind), rows in predictions[predictions["is_hybrid"]].groupby(["cross", "kind"], sort=True):
        scores = rows[score].to_numpy()
        crosses[cross] = {
            "kind": kind,
            "n_images": len(rows),
            "recall": None if threshold is None else float((scores > threshold).mean()),
            "roc_auc": float(
                roc_auc_score(np.r_[np.zeros(len(negatives)), np.ones(len(scores))], np.r_[negatives, scores])
            )
            if len(negatives)
            else None,
            "top2_are_parents": float(
                np.mean([pair_key(a, b) == tuple(cross.split(" x ")) for a, b in zip(rows["subspecies"], rows["top2"])])
            ),
        }

    def mean_of(key: str, kind: str | None = None) -> float | None:
        values = [
            values[key] for values in crosses.values() if values[key] is not None and kind in (None, values["kind"])
        ]
        return float(np.mean(values)) if values else None

    return {
        "threshold": threshold,
        "n_non_hybrids": len(negatives),
        "unseen_cross_recall": mean_of("recall"),
        "unseen_cross_roc_auc": mean_of("roc_auc"),
        "real_cross_recall": mean_of("recall", "real"),
        "composed_cross_recall": mean_of("recall", "composed"),
        "top2_are_parents": mean_of("top2_are_parents"),
        "crosses": crosses,
    }


def unseen_cross_step(
    model_dir: str,
    metadata_path: str,
    splits_path: str,
    qc_path: str,
    wings_path: str,
    pairs_path: str,
    images_dir: str,
    predictions_path: str,
    metrics_path: str,
    figure_path: str,
    settings: dict[str, Any],
    mask_settings: dict[str, Any],
    seed: int,
    batch_size: int,
) -> None:
    """The unseen_cross rule: compose the held-out pairs' validation crosses, score them and the real
    crosses with the held-out model, and write the metrics of every hybrid score (the model's
    ``score.method`` first) and the report's figure of them."""
    images = training_images(metadata_path, splits_path, qc_path, wings_path, splits=SPLITS)
    pairs = pd.read_csv(pairs_path, keep_default_na=False)
    holdout = HoldoutSettings.from_config(settings)
    rows = unseen_cross_rows(images, pairs, holdout, MaskSettings.from_config(mask_settings), seed, images_dir)
    predictor = Predictor.load(model_dir)
    predictions = pd.concat([rows, predict_table(predictor, rows, batch_size)], axis=1)
    predictions.to_csv(predictions_path, index=False, float_format="%.6g")
    by_score = {name: cross_metrics(predictions, name) for name in SCORE_NAMES}
    method = predictor.inference.score
    metrics = {
        "score": method,
        "thin_parents": holdout.thin_parents,
        **by_score[method],
        "alternatives": {k: v for k, v in by_score.items() if k != method},
    }
    Path(metrics_path).write_text(json.dumps(metrics, indent=2))
    unseen_cross_figure(metrics, figure_path)
    for cross, values in metrics["crosses"].items():
        log.info(
            "%s (%s, %d images): recall %s, ROC-AUC %.3f, top two are the parents %.2f",
            cross,
            values["kind"],
            values["n_images"],
            "n/a" if values["recall"] is None else f"{values['recall']:.3f}",
            values["roc_auc"] or 0.0,
            values["top2_are_parents"],
        )
    log.info("unseen-cross recall (mean over crosses) %s", metrics["unseen_cross_recall"])
