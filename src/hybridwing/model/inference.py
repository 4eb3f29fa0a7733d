"""Class probabilities and hybrid scores of photographs from trained networks: the wing segmenter and
background removal, each member's logits of an image (and its mirror image), their
temperature-scaled softmax averaged over members and views.

Needs only packages on the HDR challenge's whitelist: the exported submission carries this module
with the networks as `torch.export` programs (`PhotographClassifier.from_exported`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import nn

from hybridwing.device import autocast
from hybridwing.hybrid_scores import DEFAULT_SCORE, hybrid_scores, top_two
from hybridwing.model.description import WEIGHTS
from hybridwing.model.preprocess import image_tensor, load_image, mask_array, normalise
from hybridwing.segment.background import background_rng, remove_background, shown_mask
from hybridwing.segment.mask_settings import MaskSettings
from hybridwing.segment.predict import predict_probabilities, wing_mask

#: Raw photographs larger than this on a side are shrunk before segmentation (the classifier sees
#: 128-224 px and the segmenter 256 px, so nothing it uses is lost).
WORKING_SIDE = 1024
#: An exported folder (`hybridwing export-submission`): its settings, the segmenter, and member k.
EXPORTED_SETTINGS = "settings.json"
EXPORTED_SEGMENTER = "segmenter.pt2"


def exported_member(k: int) -> str:
    return f"member_{k}.pt2"


@dataclass(frozen=True)
class Inference:
    """How class probabilities are made from the trained members: each member's softmax of its
    logits divided by `temperature`, averaged over the members and (with `flip_average`) over the
    image and its mirror image. `threshold` is the hybrid score above which a photograph is called a
    hybrid: the lowest that keeps 95% of the validation split's non-hybrids at or below it. `score`
    names the hybrid score (``score.method``) that calls, thresholds and is exported. With
    validation non-hybrids of more than one species, `species_thresholds` holds each species' own
    threshold and `species` each subspecies' species: a photograph is called with the threshold of
    its most likely subspecies' species (`threshold` where that has none)."""

    weights: tuple[str, ...] = (WEIGHTS,)
    temperature: float = 1.0
    flip_average: bool = False
    threshold: float | None = None
    score: str = DEFAULT_SCORE
    species_thresholds: dict[str, float] = field(default_factory=dict)
    species: dict[str, str] = field(default_factory=dict)

    def threshold_of(self, subspecies: str) -> float | None:
        """The threshold a photograph whose most likely subspecies is `subspecies` is called with."""
        return self.species_thresholds.get(self.species.get(subspecies, ""), self.threshold)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Inference:
        """The settings `to_json` wrote (`score`, `species_thresholds` and `species` may be absent)."""
        return cls(
            tuple(values["weights"]),
            float(values["temperature"]),
            bool(values["flip_average"]),
            values.get("threshold"),
            values.get("score", DEFAULT_SCORE),
            dict(values.get("species_thresholds", {})),
            dict(values.get("species", {})),
        )

    def to_json(self) -> str:
        values = {
            "weights": list(self.weights),
            "temperature": self.temperature,
            "flip_average": self.flip_average,
            "threshold": self.threshold,
            "score": self.score,
            "species_thresholds": self.species_thresholds,
            "species": self.species,
        }
        return json.dumps(values, indent=1)


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


def member_logits(
    classifiers: list[nn.Module],
    images: torch.Tensor,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    flip_average: bool,
    device: torch.device,
) -> np.ndarray:
    """Logits (members, views, images, classes) of uint8 images (N, 3, S, S) at the model's size;
    the views are the image and, with flip averaging, its mirror image."""
    batch = normalise(images.to(device), mean, std)
    views = [batch, batch.flip(-1)] if flip_average else [batch]
    with torch.inference_mode(), autocast(device):
        return np.stack([np.stack([member(view).float().cpu().numpy() for view in views]) for member in classifiers])


def features_and_logits(
    classifiers: list[nn.Module],
    images: torch.Tensor,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    flip_average: bool,
    device: torch.device,
) -> tuple[np.ndarray, np.ndarray]:
    """The first member's image embedding (images, features) of uint8 images, and every member's
    logits as `member_logits` gives them, in one pass of the vision towers."""
    batch = normalise(images.to(device), mean, std)
    views = [batch, batch.flip(-1)] if flip_average else [batch]
    with torch.inference_mode(), autocast(device):
        embedded = [[member.visual(view) for view in views] for member in classifiers]
        logits = np.stack(
            [
                np.stack([member.head(features).float().cpu().numpy() for features in member_views])
                for member, member_views in zip(classifiers, embedded)
            ]
        )
    return embedded[0][0].float().cpu().numpy(), logits


def embed_files(
    classifiers: list[nn.Module],
    paths: list[str],
    size: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    device: torch.device,
    batch_size: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """The first member's image embedding (the vision tower's output; images, features) and every
    member's logits (members, images, classes) of image files, read `batch_size` at a time."""
    features, logits = [], []
    for start in range(0, len(paths), batch_size):
        images = torch.stack([load_image(path, size) for path in paths[start : start + batch_size]])
        embedded, member_views = features_and_logits(classifiers, images, mean, std, False, device)
        features.append(embedded)
        logits.append(member_views[:, 0])
    if not features:
        width = classifiers[0].head.in_features
        return np.zeros((0, width), np.float32), np.zeros(
            (len(classifiers), 0, classifiers[0].head.out_features), np.float32
        )
    return np.concatenate(features), np.concatenate(logits, axis=1)


def member_logits_of_files(
    classifiers: list[nn.Module],
    paths: list[str],
    size: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    flip_average: bool,
    device: torch.device,
    batch_size: int = 64,
) -> np.ndarray:
    """`member_logits` of image files, read `batch_size` at a time."""
    chunks = [
        member_logits(
            classifiers,
            torch.stack([load_image(path, size) for path in paths[start : start + batch_size]]),
            mean,
            std,
            flip_average,
            device,
        )
        for start in range(0, len(paths), batch_size)
    ]
    n_classes = classifiers[0].head.out_features
    return (
        np.concatenate(chunks, axis=2)
        if chunks
        else np.zeros((len(classifiers), 2 if flip_average else 1, 0, n_classes))
    )


@dataclass
class TrainedClassifiers:
    """The classifiers of a model folder (one, or an ensemble's members) with their input size,
    mean/std and how member probabilities combine: inference on images that are already wings."""

    classifiers: list[nn.Module]
    classes: list[str]
    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    device: torch.device
    inference: Inference = Inference()

    def member_logits(self, wings: torch.Tensor, flip_average: bool | None = None) -> np.ndarray:
        """Logits (members, views, images, classes) of uint8 wing images (N, 3, size, size)."""
        flip = self.inference.flip_average if flip_average is None else flip_average
        return member_logits(self.classifiers, wings, self.mean, self.std, flip, self.device)

    def member_logits_of_files(
        self, paths: list[str], batch_size: int = 64, flip_average: bool | None = None
    ) -> np.ndarray:
        """`member_logits` of background-removed image files, read `batch_size` at a time."""
        flip = self.inference.flip_average if flip_average is None else flip_average
        return member_logits_of_files(
            self.classifiers, paths, self.size, self.mean, self.std, flip, self.device, batch_size
        )

    def probabilities(self, wings: torch.Tensor) -> np.ndarray:
        """Class probabilities (hybrid last) of uint8 wing images (N, 3, size, size)."""
        return ensemble_probabilities(self.member_logits(wings), self.inference.temperature)

    def features_and_probabilities(self, wings: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """The first member's embedding and the class probabilities of uint8 wing images."""
        features, logits = features_and_logits(
            self.classifiers, wings, self.mean, self.std, self.inference.flip_average, self.device
        )
        return features, ensemble_probabilities(logits, self.inference.temperature)

    def table(self, probabilities: np.ndarray) -> pd.DataFrame:
        """Predicted subspecies, the top two non-hybrid classes, and every score; with the model's
        threshold (its species' where it has one per species), the call (hybrid or non-hybrid, from
        the ``score.method`` score) and, for a photograph called hybrid, its two most likely parents."""
        first, p_first, second, p_second = top_two(probabilities)
        names = np.array(self.classes[:-1] + [""], dtype=object)
        frame = pd.DataFrame({"subspecies": names[first], "p_top1": p_first, "top2": names[second], "p_top2": p_second})
        scores = hybrid_scores(probabilities)
        if self.inference.threshold is not None:
            thresholds = np.array([self.inference.threshold_of(name) for name in frame["subspecies"]], dtype=np.float64)
            hybrid = scores[self.inference.score].to_numpy() > thresholds
            frame["call"] = np.where(hybrid, "hybrid", "non-hybrid")
            frame["parents"] = [
                " x ".join(sorted((a, b))) if called else ""
                for a, b, called in zip(frame["subspecies"], frame["top2"], hybrid)
            ]
        return pd.concat([frame, scores], axis=1)


class OneAtATime(nn.Module):
    """A network exported for a batch of one, run on each image of a batch in turn."""

    def __init__(self, program: nn.Module):
        super().__init__()
        self.program = program

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.program(images[k : k + 1]) for k in range(len(images))])


@dataclass(kw_only=True)
class PhotographClassifier(TrainedClassifiers):
    """Classifiers with the preprocessing they were trained with: the wing segmenter and its mask
    settings, so that raw photographs can be predicted."""

    segmenter: nn.Module
    segmenter_size: int
    mask_settings: MaskSettings

    def wings_and_masks(self, images: list[Image.Image], names: list[str]) -> list[tuple[Image.Image, np.ndarray]]:
        """Each image with its background removed, as the pipeline's apply_masks does (the name
        seeds a textured background), and the wing mask of what it shows."""
        pictures = [np.asarray(image.convert("RGB")) for image in images]
        out = []
        for picture, probability, name in zip(
            pictures, predict_probabilities(self.segmenter, pictures, self.segmenter_size, self.device), names
        ):
            mask, _, _ = wing_mask(probability, self.mask_settings)
            wings = remove_background(picture, mask, self.mask_settings, background_rng(self.mask_settings, name))
            out.append((wings, shown_mask(mask, self.mask_settings).astype(bool)))
        return out

    def wings(self, images: list[Image.Image], names: list[str]) -> list[Image.Image]:
        """Each image with its background removed, as the pipeline's apply_masks does."""
        return [wings for wings, _ in self.wings_and_masks(images, names)]

    def model_input(self, photograph: Image.Image, name: str = "") -> torch.Tensor:
        """One raw photograph as the classifier's uint8 input (3, size, size)."""
        return self.model_input_and_mask(photograph, name)[0]

    def model_input_and_mask(self, photograph: Image.Image, name: str = "") -> tuple[torch.Tensor, np.ndarray]:
        """One raw photograph as the classifier's uint8 input (3, size, size), with its wing mask at
        that size: shrunk to at most `WORKING_SIDE` pixels a side first, then segmented, background
        removed and resized, so a batch of huge photographs never sits in memory at full size."""
        if max(photograph.size) > WORKING_SIDE:
            photograph = photograph.copy()
            photograph.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.LANCZOS)
        ((wings, mask),) = self.wings_and_masks([photograph], [name])
        return image_tensor(wings, self.size), mask_array(mask, self.size)

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

    def exported_settings(self) -> dict[str, Any]:
        """What `from_exported` needs beside the networks."""
        return {
            "classes": self.classes,
            "size": self.size,
            "mean": list(self.mean),
            "std": list(self.std),
            "members": [exported_member(k) for k in range(len(self.classifiers))],
            "inference": json.loads(self.inference.to_json()),
            "segmenter_size": self.segmenter_size,
            "mask_settings": self.mask_settings.__dict__,
        }

    @classmethod
    def from_exported(cls, folder: str | Path) -> PhotographClassifier:
        """The classifier of an exported folder (`hybridwing export-submission`), on the CPU (the
        programs were exported there)."""
        folder = Path(folder)
        settings = json.loads((folder / EXPORTED_SETTINGS).read_text())

        def program(name: str) -> nn.Module:
            return OneAtATime(torch.export.load(folder / name).module())

        return cls(
            [program(name) for name in settings["members"]],
            list(settings["classes"]),
            int(settings["size"]),
            tuple(settings["mean"]),
            tuple(settings["std"]),
            torch.device("cpu"),
            Inference.from_dict(settings["inference"]),
            segmenter=program(EXPORTED_SEGMENTER),
            segmenter_size=int(settings["segmenter_size"]),
            mask_settings=MaskSettings(**settings["mask_settings"]),
        )
