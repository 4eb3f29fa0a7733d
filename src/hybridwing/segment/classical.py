"""A weight-free teacher for museum photographs of wings on a plain board.

1. Model the board: its dominant colour, with a quadratic lighting surface fitted to board pixels.
2. Foreground: pixels far from the local board colour; the board's grid lines are thin and are
   opened away.
3. Wings are the large components whose pixels are mostly dark or saturated (wing ground and
   pattern); the ruler, label, lens rim and white paper are bright and unsaturated, and a colour chart
   or a label nearly fills its smallest enclosing (rotated) rectangle.
4. Each wing grows, a few pixels at most, into attached pixels that are faintly brighter than the
   board (pale or silvery hindwing zones, white fringes; shadows and the dark edge pixels are darker),
   and its holes are filled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np


@dataclass(frozen=True)
class ClassicalSettings:
    """Thresholds of the classical teacher (the ``teacher.classical`` block)."""

    board_distance: float = 38.0
    pale_distance: float = 14.0
    pale_reach: float = 0.04
    dark_value: float = 110.0
    saturated: float = 0.45
    min_wing_fraction: float = 0.004
    min_core_share: float = 0.45
    max_rectangularity: float = 0.93

    @classmethod
    def from_config(cls, block: dict[str, Any]) -> ClassicalSettings:
        return cls(**block)


def _surface_terms(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Quadratic terms of normalised coordinates: lighting with a fall-off or a central hot spot."""
    return np.stack([np.ones_like(xs), xs, ys, xs * xs, ys * ys, xs * ys], axis=1)


def board_model(image: np.ndarray) -> np.ndarray:
    """The board colour at every pixel: the dominant colour, then a quadratic surface per channel
    fitted to the pixels close to it."""
    pixels = image.reshape(-1, 3).astype(np.float32)
    bins = (pixels // 16).astype(np.int32)
    keys = bins[:, 0] * 256 + bins[:, 1] * 16 + bins[:, 2]
    dominant = np.bincount(keys).argmax()
    near = np.linalg.norm(pixels - pixels[keys == dominant].mean(axis=0), axis=1) < 30
    height, width = image.shape[:2]
    ys, xs = np.divmod(np.arange(height * width, dtype=np.float32), width)
    terms = _surface_terms(xs / width - 0.5, ys / height - 0.5)
    coefficients, *_ = np.linalg.lstsq(terms[near], pixels[near], rcond=None)
    return (terms @ coefficients).reshape(height, width, 3).astype(np.float32)


def classical_mask(image: np.ndarray, settings: ClassicalSettings = ClassicalSettings()) -> np.ndarray:
    """Binary wing mask (H, W uint8, 1 = wing) of an RGB photograph (H, W, 3 uint8)."""
    height, width = image.shape[:2]
    rgb = image.astype(np.float32)
    board = board_model(image)
    distance = np.linalg.norm(rgb - board, axis=2)
    foreground = (distance > settings.board_distance).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    foreground = cv2.morphologyEx(foreground, cv2.MORPH_OPEN, kernel)

    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV).astype(np.float32)
    core = foreground.astype(bool) & ((hsv[..., 2] < settings.dark_value) | (hsv[..., 1] / 255 > settings.saturated))

    count, labels, stats, _ = cv2.connectedComponentsWithStats(foreground, connectivity=8)
    core_counts = np.bincount(labels[core], minlength=count)
    keep = np.zeros(count, bool)
    min_area = settings.min_wing_fraction * height * width
    for index in range(1, count):
        area = stats[index, cv2.CC_STAT_AREA]
        if area < min_area or core_counts[index] / area < settings.min_core_share:
            continue
        points = np.column_stack(np.nonzero(labels == index)[::-1]).astype(np.float32)
        (_, _), (rect_w, rect_h), _ = cv2.minAreaRect(points)
        keep[index] = area / max(rect_w * rect_h, 1.0) <= settings.max_rectangularity
    wings = keep[labels].astype(np.uint8)
    brighter = rgb.sum(axis=2) > board.sum(axis=2)
    pale = ((distance > settings.pale_distance) & brighter).astype(np.uint8)
    pale = cv2.morphologyEx(pale, cv2.MORPH_OPEN, kernel, iterations=2)
    return fill_holes(grow(wings, pale, steps=max(1, round(settings.pale_reach * max(height, width)))))


def grow(seeds: np.ndarray, allowed: np.ndarray, steps: int) -> np.ndarray:
    """Extend `seeds` into connected `allowed` pixels, at most `steps` pixels away."""
    kernel = np.ones((3, 3), np.uint8)
    grown = seeds.copy()
    allowed = allowed | seeds
    for _ in range(steps):
        grown = cv2.dilate(grown, kernel) & allowed
    return grown


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill enclosed background inside each component (white spots and bands within a wing)."""
    padded = np.pad(mask, 1)
    flood = padded.copy()
    cv2.floodFill(flood, None, (0, 0), 1)
    holes = flood == 0
    padded[holes] = 1
    return padded[1:-1, 1:-1]
