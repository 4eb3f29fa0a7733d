"""Remove the background around the wings, optionally crop to them, and draw the overlay sheet."""

from __future__ import annotations

import logging
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw
from tqdm import tqdm

from hybridwing.segment.mask_settings import MaskSettings

log = logging.getLogger(__name__)


def texture(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A random smooth colour texture (H, W, 3 uint8): coarse noise upsampled, plus fine grain."""
    coarse = rng.uniform(40, 220, size=(8, 8, 3)).astype(np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((shape[1], shape[0]), Image.BICUBIC), dtype=np.float32)
    return np.clip(smooth + rng.normal(0, 8, smooth.shape), 0, 255).astype(np.uint8)


def crop_box(mask: np.ndarray, margin: float) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) around the mask's pixels, widened by `margin` of the image size."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return 0, 0, mask.shape[1], mask.shape[0]
    pad = int(round(margin * max(mask.shape)))
    return (
        max(0, xs.min() - pad),
        max(0, ys.min() - pad),
        min(mask.shape[1], xs.max() + 1 + pad),
        min(mask.shape[0], ys.max() + 1 + pad),
    )


def background_rng(mask_settings: MaskSettings, image_id: str) -> np.random.Generator:
    """The generator of an image's textured background, from the mask seed and the image id, so the
    pipeline and prediction draw the same background for the same image (any bytes in the id)."""
    return np.random.default_rng([mask_settings.seed, zlib.crc32(image_id.encode("utf-8", "surrogateescape"))])


def shown_mask(mask: np.ndarray, mask_settings: MaskSettings) -> np.ndarray:
    """The part of a photograph's wing mask that its background-removed image shows (cropped as the
    image is, where the settings crop)."""
    if not mask_settings.crop:
        return mask
    left, top, right, bottom = crop_box(mask, mask_settings.crop_margin)
    return mask[top:bottom, left:right]


def remove_background(
    rgb: np.ndarray, mask: np.ndarray, mask_settings: MaskSettings, rng: np.random.Generator
) -> Image.Image:
    """The wings on the configured background (RGBA when transparent), cropped if asked."""
    keep = mask.astype(bool)[..., None]
    if mask_settings.background == "transparent":
        result = Image.fromarray(np.dstack([rgb, mask.astype(np.uint8) * 255]), mode="RGBA")
    else:
        fill = {"white": 255, "black": 0}.get(mask_settings.background)
        back = texture(mask.shape, rng) if mask_settings.background == "texture" else np.full_like(rgb, fill)
        result = Image.fromarray(np.where(keep, rgb, back))
    return result.crop(crop_box(mask, mask_settings.crop_margin)) if mask_settings.crop else result


def apply_masks(
    qc: pd.DataFrame, metadata: pd.DataFrame, mask_settings: MaskSettings, out_dir: str | Path
) -> pd.DataFrame:
    """Write ``<out_dir>/<image_id>.png`` for every segmented image; returns image_id, split, path, flag."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = dict(zip(metadata["image_id"], metadata["path"]))
    paths = []
    for row in tqdm(qc.itertuples(), total=len(qc), desc="apply masks", unit="img"):
        with Image.open(sources[row.image_id]) as image, Image.open(row.mask) as mask:
            rgb, binary = np.asarray(image.convert("RGB")), np.asarray(mask) > 0
        target = out_dir / f"{row.image_id}.png"
        remove_background(rgb, binary, mask_settings, background_rng(mask_settings, row.image_id)).save(target)
        paths.append(str(target))
    wings = qc[["image_id", "split", "flag"]].copy()
    wings["path"] = paths
    return wings[["image_id", "split", "path", "flag"]]


def overlay_sheet(rows: pd.DataFrame, metadata: pd.DataFrame, tile: int = 160) -> Image.Image:
    """Image | mask (background tinted) | result for each row (image_id, mask, path), two per line."""
    sources = dict(zip(metadata["image_id"], metadata["path"]))
    lines = (len(rows) + 1) // 2
    sheet = Image.new("RGB", (6 * tile + tile // 8, lines * (tile + 14)), "white")
    pen = ImageDraw.Draw(sheet)
    for k, row in enumerate(rows.itertuples()):
        with Image.open(sources[row.image_id]) as image, Image.open(row.mask) as mask, Image.open(row.path) as result:
            original = image.convert("RGB").resize((tile, tile))
            binary = np.asarray(mask.resize((tile, tile), Image.NEAREST)) > 0
            shown = np.asarray(original).copy()
            shown[~binary] = (shown[~binary] * 0.3 + np.array([255, 0, 255]) * 0.3).astype(np.uint8)
            finished = result.convert("RGBA")
            flat = Image.new("RGBA", finished.size, (200, 200, 200, 255))
            flat.alpha_composite(finished)
            x, y = (k % 2) * (3 * tile + tile // 8), (k // 2) * (tile + 14)
            sheet.paste(original, (x, y))
            sheet.paste(Image.fromarray(shown), (x + tile, y))
            sheet.paste(flat.convert("RGB").resize((tile, tile)), (x + 2 * tile, y))
            pen.text((x + 3, y + tile + 1), f"{row.image_id} {row.flag or ''}", fill="black")
    return sheet
