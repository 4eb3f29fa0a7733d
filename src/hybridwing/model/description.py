"""What a model folder says about its model without its weights: the folder's file names, its
classes, config and hybrid score. Light on purpose (no torch), for the review jobs that need only
the class list."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hybridwing.classes import HYBRID_CLASS
from hybridwing.hybrid_scores import DEFAULT_SCORE, SCORES

WEIGHTS = "weights.safetensors"
CLASSES = "classes.json"
PREPROCESS = "preprocess.json"
CONFIG = "config.json"
SEGMENTER = "segmenter.pt"
MASK_SETTINGS = "mask.json"
#: Optional: the ensemble's weight files, the flip averaging, the temperature and the call threshold
#: (absent: one model as is, no call).
INFERENCE = "inference.json"
MODEL_FILES = (WEIGHTS, CLASSES, PREPROCESS, CONFIG, SEGMENTER, MASK_SETTINGS)
#: Optional (absent in folders written before it): the SHA-256 of each weights file and of the class
#: list, as written.
DIGESTS = "digests.json"


class ModelFolderError(ValueError):
    """A model folder that is missing files or does not fit together."""


def read_folder_json(path: Path) -> Any:
    """One JSON file of a model folder; a ModelFolderError when it is not JSON."""
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFolderError(
            f"{path.parent}: not a hybridwing model folder: {path.name} is not valid JSON ({error})"
        ) from None


@dataclass(frozen=True)
class ModelDescription:
    """What a model folder says about its model without its weights: the classes (hybrid last) and
    config.json (the training settings, the backbone it started from, whether that was pretrained),
    and the hybrid score it calls with."""

    classes: list[str]
    config: dict[str, Any]
    score: str = DEFAULT_SCORE


def read_description(folder: str | Path) -> ModelDescription:
    """The classes and config of a model folder, checked; a ModelFolderError names what is wrong."""
    folder = Path(folder)
    missing = [name for name in (CLASSES, CONFIG) if not (folder / name).is_file()]
    if missing:
        raise ModelFolderError(f"{folder}: not a hybridwing model folder (missing {', '.join(missing)})")
    classes = read_folder_json(folder / CLASSES)
    config = read_folder_json(folder / CONFIG)
    if not (isinstance(classes, list) and len(classes) >= 2 and all(isinstance(name, str) for name in classes)):
        raise ModelFolderError(f"{folder}: not a hybridwing model folder: {CLASSES} must list at least two class names")
    repeated = sorted({name for name in classes if classes.count(name) > 1})
    if repeated or classes[-1] != HYBRID_CLASS:
        raise ModelFolderError(
            f"{folder}: not a hybridwing model folder: {CLASSES} must name each class once with "
            f"{HYBRID_CLASS!r} last" + (f" ({', '.join(map(repr, repeated))} repeated)" if repeated else "")
        )
    if not isinstance(config, dict):
        raise ModelFolderError(f"{folder}: not a hybridwing model folder: {CONFIG} must be a JSON object")
    inference = read_folder_json(folder / INFERENCE) if (folder / INFERENCE).is_file() else {}
    score = inference.get("score", DEFAULT_SCORE) if isinstance(inference, dict) else None
    if score not in SCORES:
        raise ModelFolderError(
            f"{folder}: not a hybridwing model folder: {INFERENCE}: score must be one of {', '.join(SCORES)}, not "
            f"{score!r}"
        )
    return ModelDescription(classes, config, score)
