"""The Imageomics teacher: YOLOv8 boxes per wing class, each box prompting SAM; the union is the mask.

Both models come from weight files the user places under ``resources/`` (paths in the config): no
download is attempted. ultralytics and segment-anything are optional packages
(``requirements-yolo-sam.txt``); without them, or without a weight file, loading stops and says which.
YOLO weights are read by ultralytics' own loader, which unpickles: use weight files you trust.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

PACKAGES = {"ultralytics": "ultralytics", "segment_anything": "segment-anything"}


@dataclass(frozen=True)
class YoloSamSettings:
    """The ``teacher.yolo_sam`` block: the two weight files, SAM's size, YOLO's least box
    confidence and the YOLO classes that are wings."""

    yolo_weights: str = "resources/weights/yolo_wings.pt"
    sam_weights: str = "resources/weights/sam_vit_b.pth"
    sam_model: str = "vit_b"
    confidence: float = 0.25
    wing_classes: tuple[int, ...] = field(default=(1, 2, 3, 4))

    @classmethod
    def from_config(cls, block: dict[str, Any]) -> YoloSamSettings:
        values = dict(block)
        if "wing_classes" in values:
            values["wing_classes"] = tuple(int(k) for k in values["wing_classes"])
        return cls(**values)


class TeacherUnavailable(RuntimeError):
    """A package or a weight file the yolo_sam teacher needs is missing."""


def require_packages() -> dict[str, Any]:
    """Import the optional packages, or name every one that is missing and how to install it.

    ultralytics is told to stay offline and never to install packages at run time.
    """
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_OFFLINE", "true")
    modules, missing = {}, []
    for module, package in PACKAGES.items():
        try:
            modules[module] = importlib.import_module(module)
        except ImportError:
            missing.append(package)
    if missing:
        raise TeacherUnavailable(
            f"teacher.method yolo_sam needs the Python package(s) {', '.join(missing)}: "
            "pip install --no-deps -r requirements-yolo-sam.txt (or choose teacher.method classical)"
        )
    return modules


def require_file(key: str, path: str) -> Path:
    if not Path(path).is_file():
        raise TeacherUnavailable(
            f"config key teacher.yolo_sam.{key}: weight file not found: {path} "
            "(weights are never downloaded; put the file there or change the path)"
        )
    return Path(path)


@dataclass
class YoloSamTeacher:
    detector: Any
    predictor: Any
    confidence: float
    wing_classes: tuple[int, ...]

    @classmethod
    def load(cls, settings: YoloSamSettings) -> YoloSamTeacher:
        """Check packages and weight files first, then build both models on the CPU or GPU."""
        modules = require_packages()
        yolo_path = require_file("yolo_weights", settings.yolo_weights)
        sam_path = require_file("sam_weights", settings.sam_weights)
        detector = modules["ultralytics"].YOLO(str(yolo_path))
        segment_anything = modules["segment_anything"]
        sam = segment_anything.sam_model_registry[settings.sam_model](checkpoint=str(sam_path))
        return cls(
            detector=detector,
            predictor=segment_anything.SamPredictor(sam),
            confidence=float(settings.confidence),
            wing_classes=settings.wing_classes,
        )

    def wing_boxes(self, rgb: np.ndarray) -> np.ndarray:
        """(N, 4) xyxy boxes: the most confident box of each wing class (a wing appears once).

        ultralytics reads arrays as BGR, so the channels are swapped first.
        """
        result = self.detector.predict(np.ascontiguousarray(rgb[..., ::-1]), conf=self.confidence, verbose=False)[0]
        boxes = result.boxes.xyxy.cpu().numpy()
        classes = result.boxes.cls.cpu().numpy().astype(int)
        scores = result.boxes.conf.cpu().numpy()
        best = [
            boxes[classes == wing][np.argmax(scores[classes == wing])]
            for wing in self.wing_classes
            if (classes == wing).any()
        ]
        return np.array(best).reshape(-1, 4)

    def mask(self, rgb: np.ndarray) -> np.ndarray:
        """Binary wing mask (H, W uint8): SAM's mask inside every wing box, united."""
        union = np.zeros(rgb.shape[:2], np.uint8)
        boxes = self.wing_boxes(rgb)
        if len(boxes) == 0:
            return union
        self.predictor.set_image(rgb)
        for box in boxes:
            masks, _, _ = self.predictor.predict(box=box, multimask_output=False)
            union |= masks[0].astype(np.uint8)
        return union
