"""One augmentation recipe, two libraries: albumentations and torchvision transforms v2.

Geometric transforms move the photograph and its wing mask together; colour transforms touch the
photograph only. Both pipelines are seeded per image, so a copy is reproduced from its seed alone.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torchvision import tv_tensors  # noqa: E402
from torchvision.transforms import v2  # noqa: E402

from hybridwing.balance.augment_settings import LIBRARIES, AugmentSettings  # noqa: E402


def albumentations_pipeline(settings: AugmentSettings) -> A.Compose:
    transforms = [
        A.HorizontalFlip(p=0.5 if settings.hflip else 0.0),
        A.VerticalFlip(p=0.5 if settings.vflip else 0.0),
        A.Affine(
            rotate=(-settings.rotation, settings.rotation),
            scale=settings.scale,
            translate_percent=(-settings.translate, settings.translate),
            shear=(-settings.shear, settings.shear),
            border_mode=cv2.BORDER_CONSTANT,
            fill=0,
            fill_mask=0,
            p=1.0,
        ),
        A.ElasticTransform(border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=0, p=settings.elastic),
        A.GridDistortion(border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=0, p=settings.grid_distortion),
        A.ColorJitter(
            brightness=settings.brightness,
            contrast=settings.contrast,
            saturation=settings.saturation,
            hue=settings.hue,
            p=1.0,
        ),
        A.GaussianBlur(blur_limit=(3, 5), p=settings.blur),
        A.RandomGamma(gamma_limit=(settings.gamma[0] * 100, settings.gamma[1] * 100), p=settings.gamma_p),
    ]
    return A.Compose(transforms, save_applied_params=True)


class RandomGamma(v2.Transform):
    """Gamma on images only (masks pass through), with probability `p`."""

    def __init__(self, limits: tuple[float, float], p: float):
        super().__init__()
        self.limits, self.p = limits, p

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        apply = bool(torch.rand(1) < self.p)
        return {"gamma": float(torch.empty(1).uniform_(*self.limits)) if apply else 1.0}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, tv_tensors.Image) and params["gamma"] != 1.0:
            return v2.functional.adjust_gamma(inpt, params["gamma"])
        return inpt


def torchvision_pipeline(settings: AugmentSettings) -> v2.Compose:
    """The same recipe in torchvision v2 (which has elastic but no grid distortion)."""
    transforms = [
        v2.RandomHorizontalFlip(p=0.5 if settings.hflip else 0.0),
        v2.RandomVerticalFlip(p=0.5 if settings.vflip else 0.0),
        v2.RandomAffine(
            degrees=settings.rotation,
            translate=(settings.translate, settings.translate),
            scale=settings.scale,
            shear=settings.shear,
        ),
        v2.RandomApply([v2.ElasticTransform()], p=settings.elastic),
        v2.ColorJitter(
            brightness=settings.brightness,
            contrast=settings.contrast,
            saturation=settings.saturation,
            hue=settings.hue,
        ),
        v2.RandomApply([v2.GaussianBlur(kernel_size=5)], p=settings.blur),
        RandomGamma(settings.gamma, settings.gamma_p),
    ]
    return v2.Compose(transforms)


@dataclass
class Augmenter:
    """Applies either library's pipeline to (photograph, mask) with a given seed."""

    settings: AugmentSettings

    def __post_init__(self):
        self._albumentations = albumentations_pipeline(self.settings)
        self._torchvision = torchvision_pipeline(self.settings)

    def __call__(
        self, rgb: np.ndarray, mask: np.ndarray, library: str, seed: int
    ) -> tuple[np.ndarray, np.ndarray, str]:
        """(augmented RGB, augmented 0/1 mask, recipe): the recipe names what was applied."""
        if library == "albumentations":
            self._albumentations.set_random_seed(seed)
            out = self._albumentations(image=rgb, mask=mask)
            applied = [[name, _jsonable(params)] for name, params in out.get("applied_transforms", [])]
            return out["image"], out["mask"], json.dumps({"library": library, "applied": applied})
        if library == "torchvision":
            generator_state = torch.random.get_rng_state()
            torch.manual_seed(seed)
            try:
                image, moved = self._torchvision(
                    tv_tensors.Image(torch.from_numpy(rgb.copy()).permute(2, 0, 1)),
                    tv_tensors.Mask(torch.from_numpy(mask.copy())[None]),
                )
            finally:
                torch.random.set_rng_state(generator_state)
            recipe = json.dumps({"library": library, "pipeline": json.loads(self.settings.describe())})
            return image.permute(1, 2, 0).numpy(), moved[0].numpy(), recipe
        raise ValueError(f"unknown augmentation library {library!r}; use one of {', '.join(LIBRARIES)}")


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    """Applied parameters as plain JSON values (arrays to lists, floats rounded)."""
    out = {}
    for key, value in params.items():
        if isinstance(value, np.ndarray):
            value = value.tolist() if value.size <= 16 else f"array{list(value.shape)}"
        elif isinstance(value, (np.floating, float)):
            value = round(float(value), 5)
        elif isinstance(value, np.integer):
            value = int(value)
        elif not isinstance(value, (int, str, bool, list, tuple, type(None))):
            value = repr(value)[:80]
        out[key] = value
    return out
