"""The ``balance.augment`` block, apart from the libraries that apply it: the balance rule reads it
without importing albumentations or torch."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

LIBRARIES = ("albumentations", "torchvision")


@dataclass(frozen=True)
class AugmentSettings:
    """The ``balance.augment`` block: strengths and probabilities of each transform.

    A vertical flip puts the hindwings above the forewings and a strong hue shift changes the very
    colours that tell subspecies apart, so both are off by default.
    """

    rotation: float = 12.0
    hflip: bool = True
    vflip: bool = False
    scale: tuple[float, float] = (0.9, 1.1)
    translate: float = 0.05
    shear: float = 4.0
    elastic: float = 0.0
    grid_distortion: float = 0.15
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.15
    hue: float = 0.0
    blur: float = 0.1
    gamma: tuple[float, float] = (0.85, 1.15)
    gamma_p: float = 0.3

    @classmethod
    def from_config(cls, block: dict[str, Any]) -> AugmentSettings:
        values = dict(block)
        for name in ("scale", "gamma"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)

    def describe(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)
