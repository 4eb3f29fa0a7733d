"""Prediction from a fine-tuned model folder, without Snakemake: the folder read and checked, its
networks built, then the pipeline's own preprocessing and scores (`PhotographClassifier`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hybridwing.data.images import image_suffixes
from hybridwing.device import channels_last, pick_device
from hybridwing.model.backbone import WingClassifier, vision_tower
from hybridwing.model.folder import SEGMENTER, ModelFolder, ModelFolderError, read_model_folder
from hybridwing.model.inference import PhotographClassifier
from hybridwing.model.ranks import Ranks
from hybridwing.segment.unet import load_checkpoint
from hybridwing.text import printable


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


@dataclass(kw_only=True)
class Predictor(PhotographClassifier):
    """A model folder's classifiers and segmenter (`PhotographClassifier`), read and checked, with
    the rank and novelty thresholds it stores."""

    ranks: Ranks | None = None

    def ranked_table(self, wings: torch.Tensor) -> pd.DataFrame:
        """`table` of uint8 wing images (N, 3, size, size), with each photograph's rank and novelty
        where the folder stores their thresholds."""
        if not len(wings):
            return pd.DataFrame(columns=self.columns())
        features, probabilities = self.features_and_probabilities(wings)
        table = self.table(probabilities)
        return table if self.ranks is None else pd.concat([table, self.ranks.table(probabilities, features)], axis=1)

    def columns(self) -> list[str]:
        """The columns of `ranked_table`."""
        columns = list(self.table(np.zeros((0, len(self.classes)))).columns)
        return columns if self.ranks is None else [*columns, "rank", "novelty"]

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
            ranks=Ranks.load(folder.path),
        )


def image_files(arguments: list[str]) -> tuple[list[Path], list[str]]:
    """The files named, and those directly inside named folders with an ending Pillow decodes
    (sorted); and one line for each name that gave none: a folder without photographs, a name that
    does not exist (or is a link that leads nowhere or round in a loop), a folder that cannot be read.
    What is not a regular file is left to the reader to refuse by name."""
    suffixes = image_suffixes()
    files, problems = [], []
    for argument in arguments:
        path = Path(argument)
        try:
            if path.is_dir():
                found = sorted(p for p in path.iterdir() if p.suffix.lower() in suffixes and not p.is_dir())
                files.extend(found)
                if not found:
                    problems.append(f"no photographs found in {printable(argument)}")
            elif path.exists():
                files.append(path)
            else:
                link = " (a link that leads nowhere or round in a loop)" if path.is_symlink() else ""
                problems.append(f"{printable(argument)}: no such image or folder{link}")
        except OSError as error:
            problems.append(f"{printable(argument)}: cannot be read ({error.strerror or error})")
    return files, problems
