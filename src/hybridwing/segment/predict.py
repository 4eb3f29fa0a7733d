"""Run the distilled U-Net on every image and bring its masks back to each image's own resolution.

Needs only packages on the HDR challenge's whitelist: the exported submission carries this module."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from tqdm import tqdm

from hybridwing.device import autocast, channels_last, pick_device
from hybridwing.segment.mask_settings import MaskSettings

log = logging.getLogger(__name__)

QC_COLUMNS = ["image_id", "split", "mask", "wing_fraction", "components", "flag"]
#: The U-Net's input normalisation (ImageNet's mean and std).
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def to_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> normalised float input in channels-last memory (see `channels_last`)."""
    mean = torch.tensor(MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=images.device).view(1, 3, 1, 1)
    return ((images.float() / 255 - mean) / std).contiguous(memory_format=torch.channels_last)


def keep_wing_components(mask: np.ndarray, min_fraction: float) -> tuple[np.ndarray, int]:
    """Drop specks: keep the components of at least `min_fraction` of the image; returns (mask, count)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    large = np.zeros(count, bool)
    large[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_fraction * mask.size
    return large[labels].astype(np.uint8), int(large.sum())


def predict_probabilities(
    model: nn.Module, images: list[np.ndarray], size: int, device: torch.device
) -> list[np.ndarray]:
    """Wing probabilities at each image's own resolution (logits upsampled, then the sigmoid)."""
    batch = torch.stack(
        [
            torch.from_numpy(cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)).permute(2, 0, 1)
            for image in images
        ]
    ).to(device)
    with torch.inference_mode(), autocast(device):
        logits = model(to_input(batch)).float()
    return [
        torch.sigmoid(F.interpolate(logit[None], size=image.shape[:2], mode="bilinear", align_corners=False))[0, 0]
        .cpu()
        .numpy()
        for logit, image in zip(logits, images)
    ]


def wing_mask(probability: np.ndarray, mask_settings: MaskSettings) -> tuple[np.ndarray, int, str]:
    """The 0/1 wing mask of a probability map, its component count, and a QC flag: ``no_wing``
    (nothing found: the whole frame is kept), ``fragmented`` (more than 8 pieces) or empty."""
    mask, components = keep_wing_components(probability > mask_settings.threshold, mask_settings.min_component_fraction)
    if components == 0:
        return np.ones_like(mask), 0, "no_wing"
    return mask, components, "fragmented" if components > 8 else ""


def segment_images(
    model: nn.Module,
    image_size: int,
    images: pd.DataFrame,
    mask_settings: MaskSettings,
    out_dir: str | Path,
    threads: int = 1,
) -> pd.DataFrame:
    """Write a 0/255 mask per image (rows: image_id, path, split) and return the QC table.

    An image where no wing is found keeps the whole frame as its mask and is flagged ``no_wing``;
    it is never dropped.
    """
    torch.set_num_threads(max(1, threads))
    device = pick_device()
    model = channels_last(model, device).eval()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    bar = tqdm(total=len(images), desc="segment", unit="img")
    for start in range(0, len(images), mask_settings.batch_size):
        chunk = images.iloc[start : start + mask_settings.batch_size]
        pictures = []
        for path in chunk["path"]:
            with Image.open(path) as image:
                pictures.append(np.asarray(image.convert("RGB")))
        for row, probability in zip(chunk.itertuples(), predict_probabilities(model, pictures, image_size, device)):
            mask, components, flag = wing_mask(probability, mask_settings)
            target = out_dir / f"{row.image_id}.png"
            Image.fromarray(mask * 255).save(target)
            rows.append([row.image_id, row.split, str(target), float(mask.mean()), components, flag])
        bar.update(len(chunk))
    bar.close()
    qc = pd.DataFrame(rows, columns=QC_COLUMNS)
    flagged = qc[qc["flag"] != ""]
    log.info("segmented %d images; flagged %d (%s)", len(qc), len(flagged), flagged["flag"].value_counts().to_dict())
    return qc
