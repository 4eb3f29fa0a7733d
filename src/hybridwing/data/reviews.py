"""What a curator's review changes in the dataset: reviewed labels (an active-learning round's
``dataset.extra_labels``) move or add images into the training table, and ``dataset.exclude`` drops
images from every table."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from hybridwing.data.tables import TableError, line_of, read_csv_table

log = logging.getLogger(__name__)

TRAIN_TABLE = "train"
EXTRA_LABELS = "extra_labels"


def read_exclusions(path: str | Path) -> pd.DataFrame:
    """The exclude table: an ``image_id`` column (a ``reason`` column is kept when present)."""
    frame = read_csv_table(Path(path).read_bytes(), str(path))
    if "image_id" not in frame.columns:
        raise TableError(str(path), [f"no image_id column (columns: {', '.join(frame.columns)})"])
    empty = frame.index[frame["image_id"].str.strip() == ""]
    if len(empty):
        raise TableError(str(path), [f"line {line_of(i)}, column 'image_id': empty" for i in empty])
    return frame.assign(image_id=frame["image_id"].str.strip())


def apply_reviews(
    metadata: pd.DataFrame, exclusions: pd.DataFrame | None, exclude_origin: str = "dataset.exclude"
) -> pd.DataFrame:
    """`metadata` (every fetched table, the reviewed labels' rows with source ``extra_labels``) with
    each reviewed row in place of the row of the same image id, in the training table, and the
    excluded image ids left out. An excluded id that is in no table is an error (a typo would
    otherwise keep the image)."""
    reviewed = metadata[metadata["source"] == EXTRA_LABELS].assign(source=TRAIN_TABLE)
    rest = metadata[metadata["source"] != EXTRA_LABELS]
    replaced = rest["image_id"].isin(reviewed["image_id"])
    moved = rest[replaced & (rest["source"] != TRAIN_TABLE)]
    if len(reviewed):
        log.info(
            "reviewed labels: %d images, %d replace a training label, %d leave their evaluation table (%s), %d are new",
            len(reviewed),
            int((replaced & (rest["source"] == TRAIN_TABLE)).sum()),
            len(moved),
            ", ".join(f"{name} {count}" for name, count in moved["source"].value_counts().items()) or "none",
            len(reviewed) - int(replaced.sum()),
        )
    merged = pd.concat([rest[~replaced], reviewed], ignore_index=True)
    if exclusions is None:
        return merged
    unknown = exclusions.index[~exclusions["image_id"].isin(merged["image_id"])]
    if len(unknown):
        raise TableError(
            exclude_origin,
            [f"line {line_of(i)}, column 'image_id': {exclusions.at[i, 'image_id']!r} is in no table" for i in unknown],
        )
    dropped = merged["image_id"].isin(exclusions["image_id"])
    log.info(
        "excluded: %d images (%s)",
        int(dropped.sum()),
        ", ".join(f"{n} {c}" for n, c in merged.loc[dropped, "source"].value_counts().items()),
    )
    return merged[~dropped].reset_index(drop=True)
