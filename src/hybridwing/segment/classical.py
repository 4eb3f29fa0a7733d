"""A weight-free teacher for museum photographs of wings on a plain board.

1. Model the board: the dominant colour of the image's border, with a quadratic lighting surface
   fitted to the board pixels.
2. Foreground: pixels far from the local board colour; the board's grid lines are thin and are
   opened away.
3. Wings are the large components whose pixels are mostly dark or saturated (wing ground and
   pattern); the ruler, label, lens rim and white paper are bright and unsaturated, and a colour chart
   or a label nearly fills its smallest enclosing (rotated) rectangle.
4. Each wing grows into attached pixels that differ from the *local* board colour (pale, cream and
   silvery hindwing zones, white fringes): the local board is the board pixels' colour smoothed over
   a few percent of the image, so it follows lighting hot spots the quadratic surface misses. Pixels
   near clutter (a part that touches the frame, like the ruler, or a near rectangle, like a label)
   are not grown into; gaps narrower than a few percent of the image along a wing's edge are
   closed (pale patches the growth did not reach) and each wing's holes are filled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np


@dataclass(frozen=True)
class ClassicalSettings:
    """Thresholds of the classical teacher (the ``teacher.classical`` block)."""

    chroma_distance: float = 12.0
    dark_ratio: float = 0.65
    bright_ratio: float = 1.25
    pale_distance: float = 12.0
    pale_noise_multiple: float = 4.0
    pale_reach: float = 0.12
    board_smoothing: float = 0.055
    clutter_margin: float = 0.013
    close_gaps: float = 0.04
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
    """The board colour at every pixel: the dominant colour of the image's outer ring (where the
    board, not a wing, fills the frame), then a quadratic surface per channel, refitted three times
    to the pixels close to the last fit so that it follows a steep lighting gradient."""
    height, width = image.shape[:2]
    ring = max(2, min(height, width) // 12)
    border = np.concatenate(
        [
            image[:ring].reshape(-1, 3),
            image[-ring:].reshape(-1, 3),
            image[:, :ring].reshape(-1, 3),
            image[:, -ring:].reshape(-1, 3),
        ]
    ).astype(np.float32)
    bins = (border // 32).astype(np.int32)
    keys = bins[:, 0] * 64 + bins[:, 1] * 8 + bins[:, 2]
    board = border[keys == np.bincount(keys).argmax()].mean(axis=0)
    pixels = image.reshape(-1, 3).astype(np.float32)
    ys, xs = np.divmod(np.arange(height * width, dtype=np.float32), width)
    terms = _surface_terms(xs / width - 0.5, ys / height - 0.5)
    surface = np.broadcast_to(board, pixels.shape)
    sample = np.zeros(len(pixels), bool)
    sample[::3] = True  # a third of the pixels fit a six-term surface as well as all of them
    for _ in range(3):
        near = sample & (np.linalg.norm(pixels - surface, axis=1) < 30)
        coefficients, *_ = np.linalg.lstsq(terms[near], pixels[near], rcond=None)
        surface = terms @ coefficients
    return surface.reshape(height, width, 3).astype(np.float32)


def board_contrast(rgb: np.ndarray, board: np.ndarray, settings: ClassicalSettings) -> np.ndarray:
    """Pixels that are not board under any lighting: another chromaticity, or far darker or brighter.

    Shading and grid lines change the board's brightness but keep its chromaticity, so they stay
    background unless they are much darker than `dark_ratio` times the board.
    """
    brightness = rgb.sum(axis=2) + 1
    board_brightness = board.sum(axis=2) + 1
    chroma = np.linalg.norm(rgb / brightness[..., None] - board / board_brightness[..., None], axis=2)
    ratio = brightness / board_brightness
    return (chroma * 255 > settings.chroma_distance) | (ratio < settings.dark_ratio) | (ratio > settings.bright_ratio)


def local_board(image: np.ndarray, foreground: np.ndarray, board: np.ndarray, smoothing: float) -> np.ndarray:
    """The board colour at every pixel, smoothed from nearby board pixels (Gaussian of `smoothing`
    times the image size, normalised by the weight of board pixels under it). Board pixels are those
    outside the dilated `foreground` and close to the current estimate, ten times over, starting
    from the quadratic `board` (each round reaches further into a lighting hot spot); where no
    board pixel is near (under a wing) the quadratic is kept. The board is smooth, so this runs at
    a quarter of the resolution."""
    height, width = image.shape[:2]
    small = (max(1, width // 4), max(1, height // 4))
    rgb = cv2.resize(image, small, interpolation=cv2.INTER_AREA).astype(np.float32)
    quadratic = cv2.resize(board, small, interpolation=cv2.INTER_AREA)
    free = (
        cv2.resize(
            (cv2.dilate(foreground, np.ones((5, 5), np.uint8)) == 0).astype(np.float32),
            small,
            interpolation=cv2.INTER_AREA,
        )
        > 0.5
    )
    sigma = smoothing * max(small)
    estimate = quadratic
    for _ in range(10):
        weight = ((np.linalg.norm(rgb - estimate, axis=2) < 25) & free).astype(np.float32)
        total = cv2.GaussianBlur(weight, (0, 0), sigma)
        smoothed = cv2.GaussianBlur(rgb * weight[..., None], (0, 0), sigma) / np.maximum(total, 1e-6)[..., None]
        support = np.clip(total / 0.2, 0, 1)[..., None]
        estimate = support * smoothed + (1 - support) * quadratic
    return board + cv2.resize(estimate - quadratic, (width, height), interpolation=cv2.INTER_LINEAR)


def rectangularity(component: np.ndarray) -> float:
    """Area of a component over that of its smallest enclosing rotated rectangle."""
    points = np.column_stack(np.nonzero(component)[::-1]).astype(np.float32)
    (_, _), (width, height), _ = cv2.minAreaRect(points)
    return float(len(points) / max(width * height, 1.0))


def classical_mask(image: np.ndarray, settings: ClassicalSettings = ClassicalSettings()) -> np.ndarray:
    """Binary wing mask (H, W uint8, 1 = wing) of an RGB photograph (H, W, 3 uint8)."""
    height, width = image.shape[:2]
    size = max(height, width)
    rgb = image.astype(np.float32)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV).astype(np.float32)
    dark_or_saturated = (hsv[..., 2] < settings.dark_value) | (hsv[..., 1] / 255 > settings.saturated)
    quadratic = board_model(image)
    first = board_contrast(rgb, quadratic, settings) & dark_or_saturated
    board = local_board(image, first.astype(np.uint8), quadratic, settings.board_smoothing)
    foreground = cv2.morphologyEx(board_contrast(rgb, board, settings).astype(np.uint8), cv2.MORPH_OPEN, kernel)
    core = foreground.astype(bool) & dark_or_saturated

    count, labels, stats, _ = cv2.connectedComponentsWithStats(foreground, connectivity=8)
    core_counts = np.bincount(labels[core], minlength=count)
    areas = stats[:, cv2.CC_STAT_AREA]
    touches_frame = np.zeros(count, bool)
    touches_frame[np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))] = True
    wing = np.zeros(count, bool)
    clutter = np.zeros(count, bool)
    min_area = settings.min_wing_fraction * height * width
    for index in range(1, count):
        if areas[index] < 30:
            continue
        boxy = rectangularity(labels == index)
        if areas[index] >= min_area and core_counts[index] / areas[index] >= settings.min_core_share:
            wing[index] = boxy <= settings.max_rectangularity
        clutter[index] = not wing[index] and (touches_frame[index] or boxy > 0.8)
    wings = wing[labels].astype(np.uint8)

    distance = np.linalg.norm(rgb - board, axis=2)
    board_like = distance[distance < 30]
    noise = 1.4826 * np.median(np.abs(board_like - np.median(board_like))) if board_like.size else 0.0
    pale = (distance > max(settings.pale_distance, settings.pale_noise_multiple * noise)).astype(np.uint8)
    pale = cv2.morphologyEx(pale, cv2.MORPH_OPEN, kernel)
    near_clutter = cv2.dilate(
        clutter[labels].astype(np.uint8), kernel, iterations=max(1, round(settings.clutter_margin * size))
    )
    pale &= 1 - near_clutter
    grown = grow(wings, pale, steps=max(1, round(settings.pale_reach * size)))
    gap = 2 * round(settings.close_gaps * size / 2) + 1
    if settings.close_gaps > 0:
        grown = cv2.morphologyEx(grown, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (gap, gap)))
    return fill_holes(grown)


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
