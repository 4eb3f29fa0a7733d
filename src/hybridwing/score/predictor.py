"""Prediction from a fine-tuned model folder, without Snakemake: the pipeline's own preprocessing
(U-Net wing mask, background removal, resize, the model's mean/std), then class probabilities and
the hybrid score.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import pandas as pd
import torch
from PIL import Image
from safetensors.torch import load_file
from torch import nn

from hybridwing.finetune.model import WingClassifier
from hybridwing.finetune.train import image_tensor, normalise
from hybridwing.score.scores import hybrid_scores, top_two
from hybridwing.segment.background import background_rng, remove_background
from hybridwing.segment.predict import MaskSettings, predict_probabilities, wing_mask
from hybridwing.segment.unet import autocast, channels_last, load_checkpoint, pick_device

SEGMENTER = "segmenter.pt"
MASK_SETTINGS = "mask.json"
MODEL_FILES = ("weights.safetensors", "classes.json", "preprocess.json", "config.json", SEGMENTER, MASK_SETTINGS)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"}


class ModelFolderError(ValueError):
    """A model folder that is missing files or does not fit together."""


def vision_tower(model_cfg: dict[str, Any]) -> nn.Module:
    """An open_clip vision tower built from its model config (weights come separately)."""
    cfg = dict(model_cfg)
    custom = cfg.pop("custom_text", False) or "hf_model_name" in cfg.get("text_cfg", {})
    model = (open_clip.CustomTextCLIP if custom else open_clip.CLIP)(**cfg)
    return model.visual


@dataclass
class Predictor:
    """A trained classifier with its preprocessing: the wing segmenter and mask settings it was
    trained with, the input size and the model's mean/std."""

    classifier: WingClassifier
    classes: list[str]
    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    segmenter: nn.Module
    segmenter_size: int
    mask: MaskSettings
    device: torch.device

    @classmethod
    def load(cls, model_dir: str | Path, device: torch.device | None = None) -> Predictor:
        folder = Path(model_dir)
        missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
        if missing:
            raise ModelFolderError(f"{folder}: not a hybridwing model folder (missing {', '.join(missing)})")
        device = device or pick_device()
        classes = json.loads((folder / "classes.json").read_text())
        preprocess = json.loads((folder / "preprocess.json").read_text())
        config = json.loads((folder / "config.json").read_text())
        classifier = WingClassifier(vision_tower(config["model_cfg"]), len(classes))
        state = load_file(folder / "weights.safetensors")
        try:
            classifier.load_state_dict(state)
        except RuntimeError as error:
            raise ModelFolderError(f"{folder / 'weights.safetensors'} does not fit config.json's model: {error}") from None
        unet, unet_settings = load_checkpoint(folder / SEGMENTER)
        mask = MaskSettings.from_config(json.loads((folder / MASK_SETTINGS).read_text()))
        return cls(
            classifier.to(device).eval(), classes, int(preprocess["size"]), tuple(preprocess["mean"]), tuple(preprocess["std"]),
            channels_last(unet, device).eval(), unet_settings.image_size, mask, device,
        )

    def wings(self, images: list[Image.Image], names: list[str]) -> list[Image.Image]:
        """Each image with its background removed, as the pipeline's apply_masks does (the name
        seeds a textured background)."""
        pictures = [np.asarray(image.convert("RGB")) for image in images]
        out = []
        for picture, probability, name in zip(pictures, predict_probabilities(self.segmenter, pictures, self.segmenter_size, self.device), names):
            mask, _, _ = wing_mask(probability, self.mask)
            out.append(remove_background(picture, mask, self.mask, background_rng(self.mask, name)))
        return out

    def probabilities(self, wings: list[Image.Image]) -> np.ndarray:
        """Class probabilities (hybrid last) of background-removed images."""
        batch = torch.stack([image_tensor(image, self.size) for image in wings]).to(self.device)
        with torch.inference_mode(), autocast(self.device):
            logits = self.classifier(normalise(batch, self.mean, self.std)).float()
        return torch.softmax(logits, dim=1).cpu().numpy()

    def table(self, probabilities: np.ndarray) -> pd.DataFrame:
        """Predicted subspecies, the top two non-hybrid classes, and every score."""
        first, p_first, second, p_second = top_two(probabilities)
        names = np.array(self.classes[:-1] + [""], dtype=object)
        frame = pd.DataFrame(
            {"subspecies": names[first], "p_top1": p_first, "top2": names[second], "p_top2": p_second}
        )
        return pd.concat([frame, hybrid_scores(probabilities)], axis=1)

    def predict_images(self, images: list[Image.Image], names: list[str]) -> pd.DataFrame:
        return self.table(self.probabilities(self.wings(images, names)))

    def predict(self, image: Image.Image, name: str = "") -> dict[str, Any]:
        """One photograph: subspecies, hybrid score, top two and the other scores."""
        return self.predict_images([image], [name]).iloc[0].to_dict()


def image_files(arguments: list[str]) -> list[Path]:
    """The image files named, and those directly inside named folders (sorted)."""
    files = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{argument}: no such image or folder")
    return files
