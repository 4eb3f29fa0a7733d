"""Backbones through open_clip (hub ids, local folders, architecture names) and the classifier on top."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import open_clip
import torch
from torch import nn

from hybridwing.pretrained import TrunkWeightsError, load_trunk_weights

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).parent / "model_configs"
open_clip.add_model_config(CONFIG_DIR)


class BackboneUnavailable(RuntimeError):
    """The backbone's weights cannot be had here and random initialisation was not allowed."""


@dataclass(frozen=True)
class Backbone:
    """A vision tower, its open_clip model config, preprocessing, and whether it is pretrained."""

    visual: nn.Module
    model_cfg: dict[str, Any]
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    pretrained: bool
    source: str
    trunk_weights: dict[str, Any] | None = None


def preprocessing(visual: nn.Module) -> tuple[int, tuple[float, ...], tuple[float, ...]]:
    """A vision tower's input size, mean and std (from its open_clip preprocess config)."""
    config = visual.preprocess_cfg
    size = config["size"] if isinstance(config["size"], int) else config["size"][0]
    return int(size), tuple(config["mean"]), tuple(config["std"])


@contextmanager
def without_random_init_warning() -> Iterator[None]:
    """Leave out open_clip's "Model initialized randomly" while it builds an architecture whose
    trunk weights are loaded next: said there, it is untrue of the model that trains."""

    def keep(record: logging.LogRecord) -> bool:
        return "initialized randomly" not in record.getMessage()

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


def load_clip(
    spec: str, allow_random_init: bool, trunk_weights: dict[str, Any] | None = None
) -> tuple[nn.Module, dict[str, Any], bool]:
    """The whole open_clip model named by `spec` (``hf-hub:org/repo``, a local folder with
    open_clip_config.json and weights, or an architecture name), its model config, and whether it
    is pretrained. Without reachable weights it stops, unless `allow_random_init`, and then only an
    architecture name can be built (randomly initialised). `trunk_weights` (``path``: a file, or
    ``package:MODULE/PATH``; ``mean`` and ``std``: the normalisation they were trained with)
    pretrains the timm trunk of an architecture name: the image tower is then pretrained, the text
    tower is not."""
    if trunk_weights:
        if Path(spec).is_dir() or spec not in open_clip.list_models():  # hub ids are not in the list
            raise BackboneUnavailable(
                f"finetune.trunk_weights needs finetune.model to be an open_clip architecture name, not {spec}"
            )
        normalisation = {"mean": tuple(trunk_weights["mean"]), "std": tuple(trunk_weights["std"])}
        with without_random_init_warning():
            model = open_clip.create_model(spec, pretrained=None, force_preprocess_cfg=normalisation)
        try:
            load_trunk_weights(model.visual, trunk_weights["path"])
        except TrunkWeightsError as error:
            raise BackboneUnavailable(str(error)) from None
        return model, open_clip.get_model_config(spec), True
    if spec.startswith("hf-hub:"):
        try:
            model = open_clip.create_model(spec)
        except Exception as error:  # noqa: BLE001 - any failure to reach the hub means "no weights here"
            raise BackboneUnavailable(
                f"finetune.model {spec}: weights not reachable ({error.__class__.__name__}). Offline, download "
                "the model folder elsewhere and give its local path, or set finetune.model to an architecture "
                "name with finetune.allow_random_init: true (no pretraining)."
            ) from None
        return model, _hub_config(spec), True
    folder = Path(spec)
    if folder.is_dir():
        config_path = folder / "open_clip_config.json"
        if not config_path.is_file():
            raise BackboneUnavailable(f"finetune.model {spec}: no open_clip_config.json in that folder")
        return open_clip.create_model(f"local-dir:{folder}"), json.loads(config_path.read_text())["model_cfg"], True
    if spec not in open_clip.list_models():
        raise BackboneUnavailable(f"finetune.model {spec}: not a hub id, a folder, or an open_clip architecture name")
    if not allow_random_init:
        raise BackboneUnavailable(
            f"finetune.model {spec}: an architecture name has no weights offline. Set "
            "finetune.allow_random_init: true to train it from scratch, or give pretrained weights."
        )
    log.warning("backbone %s is randomly initialised: it was NOT pretrained", spec)
    return open_clip.create_model(spec, pretrained=None), open_clip.get_model_config(spec), False


def load_backbone(spec: str, allow_random_init: bool, trunk_weights: dict[str, Any] | None = None) -> Backbone:
    """The vision tower of `load_clip(spec, allow_random_init, trunk_weights)`."""
    model, model_cfg, pretrained = load_clip(spec, allow_random_init, trunk_weights)
    return Backbone(model.visual, model_cfg, *preprocessing(model.visual), pretrained, spec, trunk_weights)


def tokenizer_of(spec: str):
    """The text tokenizer that goes with `spec`'s text tower (a local folder reads its own config)."""
    return open_clip.get_tokenizer(f"local-dir:{spec}" if Path(spec).is_dir() else spec)


def _hub_config(spec: str) -> dict[str, Any]:
    """The open_clip model config of a hub model (its open_clip_config.json, cached by the load)."""
    from huggingface_hub import hf_hub_download  # noqa: PLC0415 - only hub models need it

    path = hf_hub_download(spec.removeprefix("hf-hub:"), "open_clip_config.json")
    return json.loads(Path(path).read_text())["model_cfg"]


def feature_size(visual: nn.Module) -> int:
    """Length of a vision tower's image features (open_clip ViTs say it; timm towers end in a proj)."""
    if hasattr(visual, "output_dim"):
        return int(visual.output_dim)
    return int(visual.head.proj.out_features)


def vision_tower(model_cfg: dict[str, Any]) -> nn.Module:
    """An open_clip vision tower built from its model config (weights come separately)."""
    cfg = dict(model_cfg)
    custom = cfg.pop("custom_text", False) or "hf_model_name" in cfg.get("text_cfg", {})
    model = (open_clip.CustomTextCLIP if custom else open_clip.CLIP)(**cfg)
    return model.visual


class WingClassifier(nn.Module):
    """Image features from the vision tower, then a linear head (the hybrid class is the last output)."""

    def __init__(self, visual: nn.Module, n_classes: int):
        super().__init__()
        self.visual = visual
        self.head = nn.Linear(feature_size(visual), n_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.visual(images))
