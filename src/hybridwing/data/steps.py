"""The data rules (fetch, metadata, split), file to file."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from hybridwing.data.fetch import FetchSettings, ImageStore, fetch_table, write_fetch_outputs
from hybridwing.data.reviews import apply_reviews, read_exclusions
from hybridwing.data.split import (
    LeakError,
    SplitSettings,
    describe_leaks,
    perceptual_hashes,
    split_metadata,
    split_summary,
    training_leaks,
)
from hybridwing.data.tables import TableError, Taxa, read_metadata

log = logging.getLogger(__name__)


def fetch_step(
    location: str,
    source: str,
    taxa_path: str,
    store_root: str,
    manifest_path: str,
    failures_path: str,
    settings: dict[str, Any],
) -> None:
    """The fetch rule: validate one table, fetch its images, write the manifest and failures."""
    fetch_settings = FetchSettings.from_config(settings)
    manifest, failures = fetch_table(
        location, source, Taxa.read(taxa_path), ImageStore(Path(store_root)), fetch_settings
    )
    write_fetch_outputs(manifest, failures, manifest_path, failures_path, fetch_settings.allow_missing)


def metadata_step(paths: list[str], out_path: str, exclude_path: str | None = None) -> None:
    """The metadata rule: one table from the per-table manifests, reviewed labels and exclusions
    applied, image ids unique across tables."""
    metadata = pd.concat([read_metadata(path) for path in paths], ignore_index=True)
    metadata = apply_reviews(metadata, read_exclusions(exclude_path) if exclude_path else None, str(exclude_path))
    repeated = metadata[metadata["image_id"].duplicated(keep=False)]
    if len(repeated):
        sources = repeated.groupby("image_id")["source"].agg(", ".join)
        raise TableError(
            "metadata",
            [f"image id {image_id!r} appears in tables {where}" for image_id, where in sources.items()],
        )
    metadata.to_csv(out_path, index=False)


def split_step(
    metadata_path: str,
    splits_path: str,
    duplicates_path: str,
    summary_path: str,
    settings: dict[str, Any],
    threads: int,
) -> None:
    """The split rule: hash every image, group, split the training table, write the three tables."""
    split_settings = SplitSettings.from_config(settings)
    metadata = read_metadata(metadata_path)
    hashes = perceptual_hashes(metadata["path"].tolist(), split_settings.hash_size, threads)
    splits, duplicates = split_metadata(metadata, hashes, split_settings)
    leaks = describe_leaks(training_leaks(duplicates), split_settings.max_hamming)
    if leaks and not split_settings.allow_leaks:
        raise LeakError(
            f"{len(leaks)} evaluation image(s) would be scored as unseen although the training table holds them:\n  "
            + "\n  ".join(leaks)
            + "\nRemove one image of each pair (dataset.exclude takes image ids), or set split.allow_leaks: true "
            "to score them anyway."
        )
    for leak in leaks:
        log.warning("%s (allowed by split.allow_leaks)", leak)
    splits.to_csv(splits_path, index=False)
    duplicates.to_csv(duplicates_path, index=False)
    summary = split_summary(splits)
    summary.to_csv(summary_path)
    crossing = duplicates[duplicates["split_a"] != duplicates["split_b"]]
    log.info(
        "near-duplicate pairs (<= %d bits): %d, across splits or tables: %d",
        split_settings.max_hamming,
        len(duplicates),
        len(crossing),
    )
    log.info("images per class and split:\n%s", summary.to_string())
