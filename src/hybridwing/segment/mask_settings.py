"""The ``mask`` block of the config, and which of its keys each part of the pipeline depends on
(light: the Snakefile imports it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The mask keys that change the masks themselves; the others only change background removal.
SEGMENTATION_KEYS = ("threshold", "min_component_fraction", "batch_size")
BACKGROUNDS = ("white", "black", "texture", "transparent")


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

    def problems(self) -> list[str]:
        """What is out of range or of the wrong type (the config schema checks the same for a run;
        this is for a mask.json read back from a model folder)."""

        def number(value: Any, low: float, high: float) -> bool:
            return isinstance(value, int | float) and not isinstance(value, bool) and low <= value <= high

        checks = {
            "threshold": number(self.threshold, 0, 1),
            "min_component_fraction": number(self.min_component_fraction, 0, 1),
            "batch_size": isinstance(self.batch_size, int)
            and not isinstance(self.batch_size, bool)
            and self.batch_size >= 1,
            "background": self.background in BACKGROUNDS,
            "crop": isinstance(self.crop, bool),
            "crop_margin": number(self.crop_margin, 0, 0.5),
            "seed": isinstance(self.seed, int) and not isinstance(self.seed, bool),
        }
        return [f"{key} {getattr(self, key)!r} is not allowed" for key, ok in checks.items() if not ok]

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
