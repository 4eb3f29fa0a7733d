"""What the held-out model is scored on, how each held-out cross is measured, and the report's figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score

from hybridwing.balance.balance import composable_images, write_composites
from hybridwing.balance.crosses import pair_key
from hybridwing.classes import HYBRID_CLASS
from hybridwing.holdout.pairs import plan_validation_crosses
from hybridwing.holdout.settings import HoldoutSettings
from hybridwing.hybrid_scores import threshold_at
from hybridwing.segment.mask_settings import MaskSettings


def validation_rows(
    images: pd.DataFrame,
    pairs: pd.DataFrame,
    settings: HoldoutSettings,
    mask_settings: MaskSettings,
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
        held, plan_validation_crosses(held, pairs, settings.per_pair, settings.seed), mask_settings, out_dir
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
        "holdout_recall": mean_of("recall"),
        "holdout_roc_auc": mean_of("roc_auc"),
        "real_cross_recall": mean_of("recall", "real"),
        "composed_cross_recall": mean_of("recall", "composed"),
        "top2_are_parents": mean_of("top2_are_parents"),
        "crosses": crosses,
    }


def recall_figure(metrics: dict, path: str | Path) -> None:
    """The held-out-cross validation per held-out cross: recall at the 95% non-hybrid threshold,
    ROC-AUC and how often the top two subspecies are the parents (real crosses red, composed blue)."""
    crosses = metrics["crosses"]
    names = list(crosses)
    figure = Figure(figsize=(max(6.0, 1.6 * len(names)), 3.8))
    axis = figure.subplots()
    positions = list(range(len(names)))
    measures = (
        ("recall", 0.0, "recall at 95% TNR"),
        ("roc_auc", 0.27, "ROC-AUC"),
        ("top2_are_parents", 0.54, "top two = parents"),
    )
    for key, offset, label in measures:
        values = [crosses[name][key] or 0.0 for name in names]
        colours = ["tab:red" if crosses[name]["kind"] == "real" else "tab:blue" for name in names]
        axis.bar(
            [p + offset - 0.27 for p in positions], values, width=0.25, color=colours, alpha=1.0 - offset, label=label
        )
    axis.set_xticks(
        positions, [f"{name}\n({crosses[name]['kind']}, {crosses[name]['n_images']})" for name in names], fontsize=7
    )
    axis.set_ylim(0, 1)
    mean = metrics.get("holdout_recall")
    title = f"held-out crosses, score {metrics['score']}: mean recall {'n/a' if mean is None else f'{mean:.3f}'}"
    axis.set(ylabel="share", title=title)
    axis.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0, 1.08), ncols=3, frameon=False)
    figure.tight_layout()
    figure.savefig(path, dpi=110, bbox_inches="tight")
