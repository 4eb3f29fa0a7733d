"""The balance rules (augment, one shard at a time, then balance), file to file."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from hybridwing.balance.balance import (
    BalanceSettings,
    assemble_manifest,
    augment_copies,
    phash_identical,
    plan_balance,
    plot_class_counts,
    summarise,
    training_images,
    write_summary,
)
from hybridwing.segment.mask_settings import MaskSettings
from hybridwing.shards import gather_tables, shard_rows

log = logging.getLogger(__name__)


def kept_training_images(
    metadata_path: str, splits_path: str, qc_path: str, wings_path: str, left_out_path: str | None
) -> pd.DataFrame:
    """The TRAIN images less the photographs a held-out model leaves out."""
    train = training_images(metadata_path, splits_path, qc_path, wings_path)
    if not left_out_path:
        return train
    left_out = set(pd.read_csv(left_out_path, dtype=str, keep_default_na=False)["image_id"])
    log.info("%d TRAIN photographs left out (%s)", len(left_out & set(train["image_id"])), left_out_path)
    return train[~train["image_id"].isin(left_out)].reset_index(drop=True)


def augment_step(
    metadata_path: str,
    splits_path: str,
    qc_path: str,
    wings_path: str,
    shard: str,
    out_dir: str,
    copies_path: str,
    settings: dict[str, Any],
    mask_settings: dict[str, Any],
    threads: int,
    left_out_path: str | None = None,
) -> None:
    """One shard of the augmented copies that bring every TRAIN class to at least min_per_class, and
    of the synthetic crosses; from the TRAIN photographs less those of `left_out_path` (an
    image_id table) when given."""
    train = kept_training_images(metadata_path, splits_path, qc_path, wings_path, left_out_path)
    balance_settings = BalanceSettings.from_config(settings)
    plan = shard_rows(plan_balance(train, balance_settings), shard)
    copies = augment_copies(train, plan, balance_settings, MaskSettings.from_config(mask_settings), out_dir, threads)
    copies.to_csv(copies_path, index=False)
    log.info(
        "shard %s: %d augmented copies (%d synthetic crosses)", shard, len(copies), int((plan["partner"] != "").sum())
    )


def balance_step(
    metadata_path: str,
    splits_path: str,
    qc_path: str,
    wings_path: str,
    copies_paths: list[str],
    manifest_path: str,
    summary_path: str,
    counts_plot: str,
    settings: dict[str, Any],
    threads: int,
    left_out_path: str | None = None,
) -> None:
    """The balanced manifest from the originals (less those of `left_out_path`, when given) and
    every shard's copies, its summary and plot."""
    train = kept_training_images(metadata_path, splits_path, qc_path, wings_path, left_out_path)
    manifest = assemble_manifest(train, gather_tables(copies_paths))
    manifest.to_csv(manifest_path, index=False)
    summary = summarise(manifest, train, phash_identical(manifest, threads))
    summary["library"] = BalanceSettings.from_config(settings).library
    write_summary(summary, summary_path)
    plot_class_counts(pd.Series(summary["before"]), pd.Series(summary["after"]), counts_plot)
    log.info("balanced %d classes: %s", len(summary["classes"]), summary["after"])
    log.info(
        "augmented images phash-identical to another image: %d of %d",
        summary["phash_identical_augmented"],
        summary["augmented"],
    )
