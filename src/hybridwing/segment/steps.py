"""The segmentation rules, file to file: teacher_masks, train_unet, segment, apply_masks.

The U-Net (torch, segmentation_models_pytorch: some 6 s to import) is imported by the two steps that
run it, so the light rules (teacher masks, QC, background removal, the gathers) start in a second.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from hybridwing.data.split import SPLITS, images_with_splits
from hybridwing.data.tables import read_metadata
from hybridwing.plots import training_curves
from hybridwing.segment.background import apply_masks, overlay_sheet
from hybridwing.segment.coverage import coverage_columns, coverage_histogram, coverage_summary, worst_sheet
from hybridwing.segment.mask_settings import MaskSettings
from hybridwing.segment.teacher import TeacherSettings, write_teacher_masks
from hybridwing.shards import gather_tables, shard_rows

log = logging.getLogger(__name__)


def teacher_step(
    metadata_path: str,
    splits_path: str,
    shard: str,
    out_dir: str,
    index_path: str,
    settings: dict[str, Any],
    threads: int,
    every_table: bool = False,
) -> None:
    """Teacher masks for one shard of the training table's images (train, val and test splits), or
    of every image with `every_table` (to measure the teacher on evaluation tables too; the U-Net
    learns from the training table's splits only)."""
    images = images_with_splits(metadata_path, splits_path)
    images = shard_rows(images if every_table else images[images["split"].isin(SPLITS)], shard)
    write_teacher_masks(images, TeacherSettings.from_config(settings), out_dir, threads).to_csv(index_path, index=False)


def train_step(
    index_path: str,
    model_path: str,
    metrics_path: str,
    history_path: str,
    curve_path: str,
    settings: dict[str, Any],
    threads: int,
) -> None:
    from hybridwing.segment.unet import UnetSettings, save_checkpoint, train_unet  # noqa: PLC0415 - the light rules never load the U-Net

    unet_settings = UnetSettings.from_config(settings)
    model, history, metrics = train_unet(pd.read_csv(index_path), unet_settings, threads)
    save_checkpoint(model, unet_settings, model_path)
    history.to_csv(history_path, index=False)
    training_curves(
        history,
        [("train_loss", "Dice + BCE loss", "training loss"), ("val_iou", "IoU", "validation IoU against the teacher")],
        curve_path,
    )
    if metrics["best_val_iou"] < unet_settings.min_val_iou:
        metrics["warnings"] = [
            f"the U-Net reached a validation IoU of {metrics['best_val_iou']:.2f} against the teacher masks, under "
            f"unet.min_val_iou {unet_settings.min_val_iou}: its masks are unreliable. Train it longer (unet.epochs) "
            "or on more images (unet.max_train_images), or look at the teacher masks"
        ]
    Path(metrics_path).write_text(json.dumps(metrics, indent=2))
    log.info("U-Net against the teacher on held-out test images: %s", metrics["teacher_agreement_test"])
    for warning in metrics.get("warnings", []):
        log.warning(warning)


def segment_step(
    model_path: str,
    metadata_path: str,
    splits_path: str,
    shard: str,
    out_dir: str,
    qc_path: str,
    mask_settings: dict[str, Any],
    threads: int,
) -> None:
    """Masks for one shard of every image (every split and evaluation table), and its QC table."""
    from hybridwing.segment.predict import segment_images  # noqa: PLC0415 - the light rules never load the U-Net
    from hybridwing.segment.unet import load_checkpoint  # noqa: PLC0415 - the light rules never load the U-Net

    model, unet_settings = load_checkpoint(model_path)
    images = shard_rows(images_with_splits(metadata_path, splits_path), shard)
    qc = segment_images(
        model, unet_settings.image_size, images, MaskSettings.from_config(mask_settings), out_dir, threads
    )
    qc.to_csv(qc_path, index=False)


def qc_step(
    shard_paths: list[str],
    teacher_index_path: str,
    metadata_path: str,
    pattern_dir: str,
    table_path: str,
    metrics_path: str,
) -> None:
    """One QC table of every image (the student's flags, and for teacher and student the mask's area
    share and, with pattern maps, its pattern coverage) and its summary."""
    metadata = read_metadata(metadata_path)
    qc = gather_tables(shard_paths)
    table = coverage_columns(
        qc, pd.read_csv(teacher_index_path), metadata.set_index("image_id")["camid"], pattern_dir or None
    )
    table.to_csv(table_path, index=False)
    summary = {"all": coverage_summary(table)} | {
        split: coverage_summary(rows) for split, rows in table.groupby("split") if split not in SPLITS
    }
    summary["flags"] = {flag or "none": int(n) for flag, n in table["flag"].value_counts().items()}
    summary["warnings"] = wingless_warnings(table)
    Path(metrics_path).write_text(json.dumps(summary, indent=2))
    for source, figures in summary["all"].items():
        log.info("%s masks: %s", source, figures)
    for warning in summary["warnings"]:
        log.warning(warning)


def wingless_warnings(qc: pd.DataFrame) -> list[str]:
    """The warning, if any, that a QC table's images with no wing found keep their whole frame."""
    wingless = qc.loc[qc["flag"] == "no_wing", "image_id"].tolist()
    if not wingless:
        return []
    more = f" and {len(wingless) - 5} more" if len(wingless) > 5 else ""
    return [
        f"{len(wingless)} of {len(qc)} images: no wing found (flag no_wing in results/segment/qc.csv), so each "
        f"keeps its whole frame, background included: {', '.join(wingless[:5])}{more}"
    ]


def coverage_figures_step(
    qc_path: str, metadata_path: str, pattern_dir: str, histogram_path: str, sheet_path: str
) -> None:
    """The coverage histogram and the sheet of the 16 photographs whose masks lose the most pattern."""
    table = pd.read_csv(
        qc_path, dtype={"flag": str}, keep_default_na=False, na_values={"coverage_teacher": "", "coverage_student": ""}
    )
    metadata = read_metadata(metadata_path).set_index("image_id")
    coverage_histogram(table, histogram_path)
    worst_sheet(table, metadata["path"], metadata["camid"], pattern_dir, sheet_path)


def apply_step(qc_path: str, metadata_path: str, out_dir: str, wings_path: str, mask_settings: dict[str, Any]) -> None:
    """Background-removed images for one shard's masks."""
    qc = pd.read_csv(qc_path, dtype={"flag": str}, keep_default_na=False)
    apply_masks(qc, read_metadata(metadata_path), MaskSettings.from_config(mask_settings), out_dir).to_csv(
        wings_path, index=False
    )


def wings_step(wings_paths: list[str], qc_path: str, metadata_path: str, wings_path: str, sheet_path: str) -> None:
    """The wings table of every image, and an overlay sheet of 16 evaluation images."""
    wings = gather_tables(wings_paths)
    wings.to_csv(wings_path, index=False)
    qc = pd.read_csv(qc_path, dtype={"flag": str}, keep_default_na=False)
    evaluation = qc[~qc["split"].isin(SPLITS)]
    shown = (evaluation if len(evaluation) else qc[qc["split"] == "test"]).sample(frac=1, random_state=0).head(16)
    rows = shown.merge(wings[["image_id", "path"]], on="image_id")
    overlay_sheet(rows, read_metadata(metadata_path)).save(sheet_path)
