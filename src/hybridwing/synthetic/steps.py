"""The synthesize rule, file to file."""

from __future__ import annotations

from typing import Any

from hybridwing.synthetic.collection import SyntheticSettings, write_collection


def synthesize_step(
    settings: dict[str, Any],
    train_path: str,
    dev_path: str,
    taxa_path: str,
    images_dir: str,
    masks_dir: str,
    sheet_path: str,
) -> None:
    """The synthetic collection: both tables, the taxa, the photographs, their wing masks and a sample sheet."""
    write_collection(
        SyntheticSettings.from_config(settings), train_path, dev_path, taxa_path, images_dir, masks_dir, sheet_path
    )
