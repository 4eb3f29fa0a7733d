"""The model folder: what the finetune rule hands to scoring, prediction and the challenge export.

This module writes the folder (whole or not at all) and reads it back; any file that is missing,
truncated or does not fit the others is reported as one ``ModelFolderError``. The file names and the
weightless description are in `hybridwing.model.description`.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save_file

import hybridwing
from hybridwing.atomic import atomic_folder, follow_umask
from hybridwing.digest import file_digest
from hybridwing.hybrid_scores import DEFAULT_SCORE, check_score
from hybridwing.model.description import (
    CLASSES,
    CONFIG,
    DIGESTS,
    INFERENCE,
    MASK_SETTINGS,
    MODEL_FILES,
    PREPROCESS,
    SEGMENTER,
    WEIGHTS,
    ModelFolderError,
    read_description,
    read_folder_json,
)
from hybridwing.model.inference import Inference
from hybridwing.segment.mask_settings import MaskSettings


def member_file(k: int) -> str:
    """The weights file of ensemble member `k`."""
    return WEIGHTS if k == 0 else f"weights_{k}.safetensors"


def write_model_folder(
    folder: str | Path,
    members: list[dict[str, torch.Tensor]],
    classes: list[str],
    backbone: Any,
    settings: dict[str, Any],
    segmenter_path: str | Path,
    mask_settings: MaskSettings,
    temperature: float = 1.0,
    flip_average: bool = False,
    threshold: float | None = None,
    score: str = DEFAULT_SCORE,
    species_thresholds: dict[str, float] | None = None,
    species: dict[str, str] | None = None,
) -> None:
    """Weights (safetensors, one file per ensemble member), how members combine, the class list,
    preprocessing, settings and versions, and the wing segmenter with its mask settings: all that
    prediction from raw photographs needs. The folder replaces any earlier one only once complete."""
    inference = Inference(
        tuple(member_file(k) for k in range(len(members))),
        float(temperature),
        flip_average,
        threshold,
        check_score(score),
        dict(species_thresholds or {}),
        dict(species or {}),
    )
    with atomic_folder(folder) as partial:
        shutil.copyfile(segmenter_path, partial / SEGMENTER)
        (partial / MASK_SETTINGS).write_text(json.dumps(asdict(mask_settings), indent=1))
        for name, state in zip(inference.weights, members):
            save_file({key: tensor.contiguous() for key, tensor in state.items()}, partial / name)
            follow_umask(partial / name)
        (partial / INFERENCE).write_text(inference.to_json())
        (partial / CLASSES).write_text(json.dumps(classes, indent=1))
        digests = {name: file_digest(partial / name) for name in (*inference.weights, CLASSES)}
        (partial / DIGESTS).write_text(json.dumps(digests, indent=1))
        (partial / PREPROCESS).write_text(
            json.dumps({"size": backbone.image_size, "mean": backbone.mean, "std": backbone.std}, indent=1)
        )
        config = {
            "settings": settings,
            "model_cfg": backbone.model_cfg,
            "backbone": backbone.source,
            "pretrained": backbone.pretrained,
            "trunk_weights": backbone.trunk_weights,
            "hybridwing": hybridwing.__version__,
        }
        (partial / CONFIG).write_text(json.dumps(config, indent=1))


@dataclass(frozen=True)
class ModelFolder:
    """A model folder read back and checked: every member's weights and the settings around them."""

    path: Path
    classes: list[str]
    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    config: dict[str, Any]
    inference: Inference
    members: list[dict[str, torch.Tensor]]
    mask_settings: MaskSettings

    @property
    def segmenter(self) -> Path:
        return self.path / SEGMENTER


def settings_problems(preprocess: dict[str, Any], inference: dict[str, Any], mask_settings: MaskSettings) -> list[str]:
    """What a hand-edited folder can get wrong that would give silent nonsense rather than an error:
    a temperature that is not a positive number, a std of zero, a boolean written as a string, mask
    settings out of their range."""

    def number(value: Any) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)

    found = []
    if not (
        isinstance(preprocess["size"], int) and not isinstance(preprocess["size"], bool) and preprocess["size"] >= 16
    ):
        found.append(f"{PREPROCESS}: size must be a whole number of pixels (16 or more), not {preprocess['size']!r}")
    if not all(number(value) for value in preprocess["mean"]):
        found.append(f"{PREPROCESS}: mean must be finite numbers, not {preprocess['mean']!r}")
    if not all(number(value) and value > 0 for value in preprocess["std"]):
        found.append(f"{PREPROCESS}: std must be positive finite numbers, not {preprocess['std']!r}")
    if "temperature" in inference and not (number(inference["temperature"]) and inference["temperature"] > 0):
        found.append(f"{INFERENCE}: temperature must be a positive finite number, not {inference['temperature']!r}")
    if inference.get("threshold") is not None and not number(inference["threshold"]):
        found.append(f"{INFERENCE}: threshold must be a finite number or null, not {inference['threshold']!r}")
    per_species = inference.get("species_thresholds", {})
    if not (isinstance(per_species, dict) and all(number(value) for value in per_species.values())):
        found.append(f"{INFERENCE}: species_thresholds must map species to finite numbers, not {per_species!r}")
    if "flip_average" in inference and not isinstance(inference["flip_average"], bool):
        found.append(f"{INFERENCE}: flip_average must be true or false, not {inference['flip_average']!r}")
    found += [f"{MASK_SETTINGS}: {wrong}" for wrong in mask_settings.problems()]
    return found


def read_model_folder(folder: str | Path) -> ModelFolder:
    """Read and check a model folder; every problem is a ModelFolderError naming the folder and file."""
    folder = Path(folder)
    missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelFolderError(f"{folder}: not a hybridwing model folder (missing {', '.join(missing)})")
    description = read_description(folder)
    classes, config = description.classes, description.config
    problem = f"{folder}: not a hybridwing model folder:"
    preprocess = read_folder_json(folder / PREPROCESS)
    mask_block = read_folder_json(folder / MASK_SETTINGS)
    inference_block = read_folder_json(folder / INFERENCE) if (folder / INFERENCE).is_file() else None
    try:
        size, mean, std = (
            int(preprocess["size"]),
            tuple(map(float, preprocess["mean"])),
            tuple(map(float, preprocess["std"])),
        )
        inference = (
            Inference()
            if inference_block is None
            else Inference.from_dict(inference_block | {"score": description.score})
        )
        mask_settings = MaskSettings.from_config(mask_block)
        vision_cfg = config["model_cfg"]["vision_cfg"]
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFolderError(
            f"{problem} a setting is missing or malformed ({error.__class__.__name__}: {error})"
        ) from None
    if len(mean) != 3 or len(std) != 3 or not inference.weights or not isinstance(vision_cfg, dict):
        raise ModelFolderError(
            f"{problem} {PREPROCESS} needs 3 means and stds, {CONFIG} a vision_cfg and {INFERENCE} a weights file"
        )
    wrong = settings_problems(preprocess, inference_block or {}, mask_settings)
    trained = vision_cfg.get("image_size")
    if isinstance(trained, int) and size > trained:
        wrong.append(f"{PREPROCESS}: size {size} is larger than the {trained} px the weights were trained at")
    if wrong:
        raise ModelFolderError(f"{problem} " + "; ".join(wrong))
    members, read = [], {}
    for name in inference.weights:
        if Path(name).name != name or not (folder / name).is_file():
            raise ModelFolderError(f"{folder / INFERENCE}: weights file {name!r} is not in the folder")
        try:
            data = (folder / name).read_bytes()  # read once: loaded and checked against digests.json
            members.append(load(data))
        except (SafetensorError, OSError, ValueError) as error:
            raise ModelFolderError(f"{problem} {name} is not a readable safetensors file ({error})") from None
        read[name] = hashlib.sha256(data).hexdigest()
        for key, tensor in members[-1].items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise ModelFolderError(f"{problem} {name}: tensor {key} holds NaN or infinite values")
    changed = digest_mismatches(folder, read)
    if changed:
        raise ModelFolderError(
            f"{problem} {', '.join(changed)} not as written with this model (replaced or edited after training)"
        )
    return ModelFolder(folder, classes, size, mean, std, config, inference, members, mask_settings)


def digest_mismatches(folder: Path, read: dict[str, str]) -> list[str]:
    """The files whose SHA-256 is not the one digests.json recorded (none where the folder has no
    digests); `read` holds the digests of files already read, by name."""
    if not (folder / DIGESTS).is_file():
        return []
    recorded = read_folder_json(folder / DIGESTS)
    if not isinstance(recorded, dict):
        return [DIGESTS]
    return [
        name
        for name, digest in recorded.items()
        if Path(name).name != name
        or not (folder / name).is_file()
        or (read.get(name) or file_digest(folder / name)) != digest
    ]
