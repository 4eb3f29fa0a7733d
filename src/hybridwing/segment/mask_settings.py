"""The ``mask`` block of the config, and which of its keys each part of the pipeline depends on
(light: the Snakefile imports it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The mask keys that change the masks themselves; the others only change background removal.
SEGMENTATION_KEYS = ("threshold", "min_component_fraction", "batch_size")


@dataclass(frozen=True)
class MaskSettings:
    """The ``mask`` block of the config (segmentation and background removal)."""

    threshold: float = 0.5
    min_component_fraction: float = 0.003
    batch_size: int = 16
    background: str = "white"
    crop: bool = False
    crop_margin: float = 0.05
    seed: int = 0

    @classmethod
    def from_config(cls, block: dict[str, Any]) -> MaskSettings:
        return cls(**block)

    @staticmethod
    def used_by(block: dict[str, Any], part: str) -> dict[str, Any]:
        """The keys of the config's mask block that one part of the pipeline depends on, so that a
        change reruns only what it affects: ``"segmentation"`` (the masks), ``"background"``
        (painting the background, cropping) or ``"all"`` (the model folder keeps both)."""
        if part == "all":
            return dict(block)
        if part not in ("segmentation", "background"):
            raise ValueError(f"unknown part {part!r}")
        return {key: value for key, value in block.items() if (key in SEGMENTATION_KEYS) == (part == "segmentation")}
