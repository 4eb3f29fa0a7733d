"""The holdout rules, file to file: the held-out pairs, and the held-out model's scores on the
crosses it never saw (the rows it never trains on are holdout/rows.py's)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from hybridwing.balance.balance import composable_images, training_images
from hybridwing.classes import HYBRID_CLASS
from hybridwing.data.split import SPLITS
from hybridwing.holdout.pairs import holdout_pairs, thinned_parents
from hybridwing.holdout.settings import HoldoutSettings
from hybridwing.holdout.validation import cross_metrics, recall_figure, validation_rows
from hybridwing.hybrid_scores import SCORE_NAMES
from hybridwing.score.predictor import Predictor
from hybridwing.score.steps import predict_table
from hybridwing.segment.mask_settings import MaskSettings

log = logging.getLogger(__name__)


def pairs_step(
    metadata_path: str,
    splits_path: str,
    qc_path: str,
    wings_path: str,
    pairs_path: str,
    thinned_path: str,
    settings: dict[str, Any],
) -> None:
    """The holdout_pairs rule: which crosses the held-out model never sees, and which TRAIN
    photographs of the real crosses' parents it leaves out (``thin_parents``)."""
    holdout = HoldoutSettings.from_config(settings)
    images = training_images(metadata_path, splits_path, qc_path, wings_path, splits=SPLITS)
    held = images[(images["split"] != "train") & (images["label"] != HYBRID_CLASS)]
    pairs = holdout_pairs(images, composable_images(held), holdout.pairs)
    pairs.to_csv(pairs_path, index=False)
    log.info("held-out crosses:\n%s", pairs.to_string(index=False))
    thinned = thinned_parents(images, pairs, holdout.thin_parents, holdout.seed)
    thinned.to_csv(thinned_path, index=False)
    if len(thinned):
        log.info(
            "the real crosses' parents keep %d TRAIN photographs each; left out: %s",
            holdout.thin_parents,
            thinned["label"].value_counts().sort_index().to_dict(),
        )


def score_step(
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
    batch_size: int,
) -> None:
    """The holdout_score rule: compose the held-out pairs' validation crosses, score them and the
    real crosses with the held-out model, and write the metrics of every hybrid score (the model's
    ``score.method`` first) and the report's figure of them."""
    images = training_images(metadata_path, splits_path, qc_path, wings_path, splits=SPLITS)
    pairs = pd.read_csv(pairs_path, keep_default_na=False)
    holdout = HoldoutSettings.from_config(settings)
    rows = validation_rows(images, pairs, holdout, MaskSettings.from_config(mask_settings), images_dir)
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
    recall_figure(metrics, figure_path)
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
    log.info("held-out-cross recall (mean over crosses) %s", metrics["holdout_recall"])
