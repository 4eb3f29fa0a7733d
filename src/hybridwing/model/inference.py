"""Class probabilities from a trained model folder: each member's logits of an image (and its mirror
image), their temperature-scaled softmax averaged over members and views."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from hybridwing.device import autocast
from hybridwing.model.backbone import WingClassifier, vision_tower
from hybridwing.model.folder import Inference, ModelFolder, ModelFolderError
from hybridwing.model.preprocess import load_image, normalise
from hybridwing.scores import hybrid_scores, top_two


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


def load_classifiers(folder: ModelFolder, device: torch.device) -> list[WingClassifier]:
    """Every member of a checked model folder, on `device` in eval mode; weights that do not fit
    the folder's config, or a size they cannot take, are a ModelFolderError."""
    classifiers = []
    for name, state in zip(folder.inference.weights, folder.members):
        classifier = WingClassifier(vision_tower(folder.config["model_cfg"]), len(folder.classes))
        try:
            classifier.load_state_dict(state)
        except RuntimeError as error:
            raise ModelFolderError(f"{folder.path / name} does not fit config.json's model: {error}") from None
        classifiers.append(classifier.to(device).eval())
    try:
        with torch.inference_mode():
            classifiers[0](torch.zeros(1, 3, folder.size, folder.size, device=device))
    except RuntimeError as error:
        raise ModelFolderError(
            f"{folder.path}: not a hybridwing model folder: preprocess.json's size {folder.size} does not fit the "
            f"weights ({error})"
        ) from None
    return classifiers


@dataclass
class TrainedClassifiers:
    """The classifiers of a model folder (one, or an ensemble's members) with their input size,
    mean/std and how member probabilities combine: inference on images that are already wings."""

    classifiers: list[WingClassifier]
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
