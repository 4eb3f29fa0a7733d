"""Teacher masks for distilling the U-Net: provided masks, the classical teacher, or YOLO+SAM."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from hybridwing.segment.classical import ClassicalSettings, classical_mask
from hybridwing.segment.yolo_sam import YoloSamSettings

log = logging.getLogger(__name__)

WING_IDS = (1, 2, 3, 4)
METHODS = ("provided", "classical", "yolo_sam")


@dataclass(frozen=True)
class TeacherSettings:
    """The ``teacher`` block of the config."""

    method: str = "classical"
    masks_dir: str = ""
    classical: ClassicalSettings = field(default_factory=ClassicalSettings)
    yolo_sam: YoloSamSettings = field(default_factory=YoloSamSettings)

    @classmethod
    def from_config(cls, block: dict[str, Any]) -> TeacherSettings:
        return cls(
            method=block["method"],
            masks_dir=block.get("masks_dir", ""),
            classical=ClassicalSettings.from_config(block.get("classical", {})),
            yolo_sam=YoloSamSettings.from_config(block.get("yolo_sam", {})),
        )


class MissingMaskError(FileNotFoundError):
    """A provided mask is missing for an image."""


def wing_pixels(class_ids: np.ndarray) -> np.ndarray:
    """Binary wing mask (0/1) from a wing-segmentation class-id mask (1-4 are the four wings)."""
    return np.isin(class_ids, WING_IDS).astype(np.uint8)


def provided_mask(image_id: str, masks_dir: Path, size: tuple[int, int]) -> np.ndarray:
    path = masks_dir / f"{image_id}_mask.png"
    if not path.is_file():
        raise MissingMaskError(f"no provided mask for image {image_id}: expected {path}")
    with Image.open(path) as mask:
        if mask.size != size:
            raise ValueError(f"{path}: mask is {mask.size[0]}x{mask.size[1]}, image is {size[0]}x{size[1]}")
        return wing_pixels(np.asarray(mask))


def make_teacher(settings: TeacherSettings):
    """A function image_id, RGB array -> binary wing mask for the configured method."""
    if settings.method == "provided":
        folder = Path(settings.masks_dir)
        return lambda image_id, rgb: provided_mask(image_id, folder, (rgb.shape[1], rgb.shape[0]))
    if settings.method == "classical":
        return lambda image_id, rgb: classical_mask(rgb, settings.classical)
    if settings.method == "yolo_sam":
        from hybridwing.segment.yolo_sam import YoloSamTeacher  # noqa: PLC0415 - optional packages

        teacher = YoloSamTeacher.load(settings.yolo_sam)
        return lambda image_id, rgb: teacher.mask(rgb)
    raise ValueError(f"teacher.method must be one of {', '.join(METHODS)}, not {settings.method!r}")


def write_teacher_masks(
    images: pd.DataFrame, settings: TeacherSettings, out_dir: str | Path, threads: int = 1
) -> pd.DataFrame:
    """Write ``<out_dir>/<image_id>.png`` (0/255) for every row of `images` (image_id, path, split)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    teacher = make_teacher(settings)

    def one(row) -> tuple[str, float]:
        with Image.open(row.path) as image:
            rgb = np.asarray(image.convert("RGB"))
        mask = teacher(row.image_id, rgb)
        path = out_dir / f"{row.image_id}.png"
        Image.fromarray(mask * 255).save(path)
        return str(path), float(mask.mean())

    workers = 1 if settings.method == "yolo_sam" else max(1, threads)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(
            tqdm(pool.map(one, images.itertuples()), total=len(images), desc=f"teacher ({settings.method})", unit="img")
        )
    index = images[["image_id", "split", "path"]].copy()
    index["mask"] = [path for path, _ in results]
    index["wing_fraction"] = [fraction for _, fraction in results]
    empty = index["wing_fraction"] == 0
    if empty.any():
        log.warning(
            "teacher found no wing in %d image(s): %s", empty.sum(), ", ".join(index.loc[empty, "image_id"].head(10))
        )
    log.info("teacher masks: %d images, mean wing fraction %.3f", len(index), index["wing_fraction"].mean())
    return index
