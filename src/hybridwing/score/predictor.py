"""Prediction from a fine-tuned model folder, without Snakemake: the pipeline's own preprocessing
(U-Net wing mask, background removal, resize, the model's mean/std), then class probabilities and
the hybrid score.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import nn

from hybridwing.data.images import image_suffixes
from hybridwing.device import channels_last, pick_device
from hybridwing.model.folder import SEGMENTER, ModelFolderError, read_model_folder
from hybridwing.model.inference import TrainedClassifiers, load_classifiers
from hybridwing.model.preprocess import image_tensor
from hybridwing.segment.background import background_rng, remove_background
from hybridwing.segment.mask_settings import MaskSettings
from hybridwing.segment.predict import predict_probabilities, wing_mask
from hybridwing.segment.unet import load_checkpoint
from hybridwing.text import printable

#: Raw photographs larger than this on a side are shrunk before segmentation (the classifier sees
#: 128-224 px and the segmenter 256 px, so nothing it uses is lost).
WORKING_SIDE = 1024


@dataclass(kw_only=True)
class Predictor(TrainedClassifiers):
    """A model folder's classifiers with the preprocessing they were trained with: the wing
    segmenter and its mask settings, so that raw photographs can be predicted."""

    segmenter: nn.Module
    segmenter_size: int
    mask_settings: MaskSettings

    @classmethod
    def load(cls, model_dir: str | Path, device: torch.device | None = None) -> Predictor:
        folder = read_model_folder(model_dir)
        device = device or pick_device()
        classifiers = load_classifiers(folder, device)
        try:
            unet, unet_settings = load_checkpoint(folder.segmenter)
        except Exception as error:  # noqa: BLE001 - a damaged segmenter fails in torch.load, json or the U-Net build
            raise ModelFolderError(
                f"{folder.path}: not a hybridwing model folder: {SEGMENTER} is damaged ({error.__class__.__name__}: "
                f"{error})"
            ) from None
        return cls(
            classifiers,
            folder.classes,
            folder.size,
            folder.mean,
            folder.std,
            device,
            folder.inference,
            segmenter=channels_last(unet, device).eval(),
            segmenter_size=unet_settings.image_size,
            mask_settings=folder.mask_settings,
        )

    def wings(self, images: list[Image.Image], names: list[str]) -> list[Image.Image]:
        """Each image with its background removed, as the pipeline's apply_masks does (the name
        seeds a textured background)."""
        pictures = [np.asarray(image.convert("RGB")) for image in images]
        out = []
        for picture, probability, name in zip(
            pictures, predict_probabilities(self.segmenter, pictures, self.segmenter_size, self.device), names
        ):
            mask, _, _ = wing_mask(probability, self.mask_settings)
            out.append(remove_background(picture, mask, self.mask_settings, background_rng(self.mask_settings, name)))
        return out

    def model_input(self, photograph: Image.Image, name: str = "") -> torch.Tensor:
        """One raw photograph as the classifier's uint8 input (3, size, size): shrunk to at most
        `WORKING_SIDE` pixels a side first, then segmented, background removed and resized, so a
        batch of huge photographs never sits in memory at full size."""
        if max(photograph.size) > WORKING_SIDE:
            photograph = photograph.copy()
            photograph.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.LANCZOS)
        return image_tensor(self.wings([photograph], [name])[0], self.size)

    def member_logits(self, wings: list[Image.Image] | torch.Tensor, flip_average: bool | None = None) -> np.ndarray:
        """Logits (members, views, images, classes) of background-removed images (or their
        `model_input` tensors); the views are the image and, with flip averaging, its mirror image."""
        images = (
            wings
            if isinstance(wings, torch.Tensor)
            else torch.stack([image_tensor(image, self.size) for image in wings])
        )
        return super().member_logits(images, flip_average)

    def predict_images(self, images: list[Image.Image], names: list[str]) -> pd.DataFrame:
        return self.table(
            self.probabilities(torch.stack([self.model_input(image, name) for image, name in zip(images, names)]))
        )

    def predict(self, image: Image.Image, name: str = "") -> dict[str, Any]:
        """One photograph: subspecies, hybrid score, top two and the other scores."""
        return self.predict_images([image], [name]).iloc[0].to_dict()


def image_files(arguments: list[str]) -> tuple[list[Path], list[Path]]:
    """The files named, and those directly inside named folders with an ending Pillow decodes
    (sorted); and the named folders that hold none. What is not a regular file is left to the reader
    to refuse by name."""
    suffixes = image_suffixes()
    files, empty = [], []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in suffixes and not p.is_dir())
            files.extend(found)
            if not found:
                empty.append(path)
        elif path.exists():
            files.append(path)
        else:
            raise FileNotFoundError(f"{printable(argument)}: no such image or folder")
    return files, empty
