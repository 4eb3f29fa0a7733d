"""Junk photographs found by text prompts: a pretrained CLIP with a text tower (BioCLIP) scores each
raw photograph against prompts for a wing and for what else lands in a collection's folders."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from hybridwing.device import autocast
from hybridwing.model.backbone import BackboneUnavailable, load_clip, preprocessing, tokenizer_of
from hybridwing.model.preprocess import normalised_batches


def why_not_zero_shot(model: nn.Module, pretrained: bool) -> str | None:
    """Why `model` cannot judge photographs by text, or None when it can."""
    if not hasattr(model, "encode_text"):
        return "the backbone has no text tower"
    if not pretrained:
        return "the backbone is randomly initialised: its text and image towers share nothing yet"
    return None


def prompt_probabilities(
    model: nn.Module,
    tokenizer,
    prompts: list[str],
    paths: list[str],
    size: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    device: torch.device,
    batch_size: int = 32,
) -> np.ndarray:
    """(images, prompts) softmax of the model's scaled cosine similarities between each image and
    each prompt."""
    model = model.to(device).eval()
    with torch.inference_mode(), autocast(device):
        text = model.encode_text(tokenizer(prompts).to(device)).float()
        text = text / text.norm(dim=-1, keepdim=True)
        scale = model.logit_scale.exp().float() if hasattr(model, "logit_scale") else torch.tensor(100.0)
        out = []
        for batch in normalised_batches(paths, size, mean, std, device, batch_size):
            image = model.encode_image(batch).float()
            image = image / image.norm(dim=-1, keepdim=True)
            out.append(torch.softmax(scale * image @ text.T, dim=-1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, len(prompts)))


def zero_shot_judge(backbone: str) -> tuple[Any, str]:
    """A callable (paths, prompts) -> (images, prompts) probabilities from the pretrained CLIP named
    `backbone`, and "", or None and why there is none."""
    try:
        model, _, pretrained = load_clip(backbone, allow_random_init=False)
    except BackboneUnavailable as error:
        return None, f"no pretrained text tower ({error})"
    reason = why_not_zero_shot(model, pretrained)
    if reason:
        return None, reason
    size, mean, std = preprocessing(model.visual)
    tokenizer = tokenizer_of(backbone)

    def judge(paths: list[str], prompts: list[str]) -> np.ndarray:
        return prompt_probabilities(model, tokenizer, prompts, paths, size, mean, std, torch.device("cpu"))

    return judge, ""
