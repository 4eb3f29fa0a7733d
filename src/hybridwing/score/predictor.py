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
#: Optional: the ensemble's weight files, the flip averaging and the temperature (absent: one model as is).
INFERENCE = "inference.json"
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


@dataclass(frozen=True)
class Inference:
    """How class probabilities are made from the trained members: each member's softmax of its
    logits divided by `temperature`, averaged over the members and (with `flip_average`) over the
    image and its mirror image."""

    weights: tuple[str, ...] = ("weights.safetensors",)
    temperature: float = 1.0
    flip_average: bool = False

    @classmethod
    def read(cls, folder: Path) -> Inference:
        path = folder / INFERENCE
        if not path.is_file():
            return cls()
        block = json.loads(path.read_text())
        return cls(tuple(block["weights"]), float(block["temperature"]), bool(block["flip_average"]))

    def write(self, folder: Path) -> None:
        (folder / INFERENCE).write_text(json.dumps({"weights": list(self.weights), "temperature": self.temperature, "flip_average": self.flip_average}, indent=1))


def ensemble_probabilities(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Mean softmax over the leading axes of `logits` (..., images, classes) at `temperature`."""
    scaled = torch.as_tensor(logits, dtype=torch.float64) / temperature
    probabilities = torch.softmax(scaled, dim=-1)
    return probabilities.reshape(-1, *probabilities.shape[-2:]).mean(0).numpy()


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature (0.25-50, on a log grid of 141 points) whose ensemble probabilities give
    `labels` the lowest mean negative log-likelihood."""
    grid = np.geomspace(0.25, 50, 141)
    rows = np.arange(len(labels))
    losses = [-np.log(np.clip(ensemble_probabilities(logits, t)[rows, labels], 1e-300, None)).mean() for t in grid]
    return float(grid[int(np.argmin(losses))])


@dataclass
class Predictor:
    """Trained classifiers (one, or the members of an ensemble) with their preprocessing: the wing
    segmenter and mask settings they were trained with, the input size and the model's mean/std, and
    how member probabilities are combined."""

    classifiers: list[WingClassifier]
    classes: list[str]
    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    segmenter: nn.Module
    segmenter_size: int
    mask: MaskSettings
    device: torch.device
    inference: Inference = Inference()

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
        inference = Inference.read(folder)
        classifiers = []
        for name in inference.weights:
            if not (folder / name).is_file() or Path(name).name != name:
                raise ModelFolderError(f"{folder / INFERENCE}: weights file {name!r} is not in the folder")
            classifier = WingClassifier(vision_tower(config["model_cfg"]), len(classes))
            try:
                classifier.load_state_dict(load_file(folder / name))
            except RuntimeError as error:
                raise ModelFolderError(f"{folder / name} does not fit config.json's model: {error}") from None
            classifiers.append(classifier.to(device).eval())
        unet, unet_settings = load_checkpoint(folder / SEGMENTER)
        mask = MaskSettings.from_config(json.loads((folder / MASK_SETTINGS).read_text()))
        return cls(
            classifiers, classes, int(preprocess["size"]), tuple(preprocess["mean"]), tuple(preprocess["std"]),
            channels_last(unet, device).eval(), unet_settings.image_size, mask, device, inference,
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

    def member_logits(self, wings: list[Image.Image], flip_average: bool | None = None) -> np.ndarray:
        """Logits (members, views, images, classes) of background-removed images; the views are the
        image and, with flip averaging, its mirror image."""
        flip = self.inference.flip_average if flip_average is None else flip_average
        batch = normalise(torch.stack([image_tensor(image, self.size) for image in wings]).to(self.device), self.mean, self.std)
        views = [batch, batch.flip(-1)] if flip else [batch]
        with torch.inference_mode(), autocast(self.device):
            return np.stack([np.stack([member(view).float().cpu().numpy() for view in views]) for member in self.classifiers])

    def member_logits_of_files(self, paths: list[str], batch_size: int = 64, flip_average: bool | None = None) -> np.ndarray:
        """`member_logits` of background-removed image files, read `batch_size` at a time."""
        chunks = []
        for start in range(0, len(paths), batch_size):
            wings = []
            for path in paths[start : start + batch_size]:
                with Image.open(path) as image:
                    wings.append(image.convert("RGB"))
            chunks.append(self.member_logits(wings, flip_average))
        flip = self.inference.flip_average if flip_average is None else flip_average
        views = 2 if flip else 1
        return np.concatenate(chunks, axis=2) if chunks else np.zeros((len(self.classifiers), views, 0, len(self.classes)))

    def probabilities(self, wings: list[Image.Image]) -> np.ndarray:
        """Class probabilities (hybrid last) of background-removed images."""
        return ensemble_probabilities(self.member_logits(wings), self.inference.temperature)

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
