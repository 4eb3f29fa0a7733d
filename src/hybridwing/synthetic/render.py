"""Draw one specimen photograph and its ground-truth mask, like the Cambridge museum photographs.

Four separated wings on a grey or green board with grid lines, a ruler, a specimen label and
sometimes a lens rim; a lighting gradient and sensor noise on top. Every wing pixel is drawn with a
hard edge, so the mask holds exactly the pixels each wing painted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hybridwing.synthetic.patterns import RGB, Pattern

# Class ids of the Imageomics wing-segmentation masks. "Right" is the butterfly's right, which a
# dorsal photograph shows on the left of the image.
BACKGROUND, RIGHT_FOREWING, LEFT_FOREWING, RIGHT_HINDWING, LEFT_HINDWING, RULER, LABEL = 0, 1, 2, 3, 4, 5, 7
WING_CLASSES = (RIGHT_FOREWING, LEFT_FOREWING, RIGHT_HINDWING, LEFT_HINDWING)

GREY_BOARD: RGB = (188, 190, 198)
GREEN_BOARD: RGB = (150, 214, 92)
PALE_OVERLAP: RGB = (214, 204, 184)


@dataclass(frozen=True)
class WingPlacement:
    """Where a wing lies: base point and length in pixels, axis angle in radians, mirrored or not."""

    class_id: int
    base: tuple[float, float]
    angle: float
    length: float
    width: float
    mirrored: bool

    @property
    def forewing(self) -> bool:
        return self.class_id in (RIGHT_FOREWING, LEFT_FOREWING)


def wing_layout(size: int, rng: np.random.Generator) -> list[WingPlacement]:
    """The four wings of one specimen, with small rotation, scale and position jitter per wing."""
    scale = rng.uniform(0.9, 1.05)
    placements = []
    specs = (
        (RIGHT_FOREWING, (0.47, 0.2), np.pi, 0.42, 0.22, True),
        (LEFT_FOREWING, (0.53, 0.2), 0.0, 0.42, 0.22, False),
        (RIGHT_HINDWING, (0.28, 0.5), np.pi / 2, 0.29, 0.3, False),
        (LEFT_HINDWING, (0.72, 0.5), np.pi / 2, 0.29, 0.3, True),
    )
    for class_id, (x, y), angle, length, width, mirrored in specs:
        own = scale * rng.uniform(0.95, 1.05)
        placements.append(
            WingPlacement(
                class_id=class_id,
                base=((x + rng.normal(0, 0.012)) * size, (y + rng.normal(0, 0.012)) * size),
                angle=angle + rng.normal(0, 0.06),
                length=length * own * size,
                width=width * own * size,
                mirrored=mirrored,
            )
        )
    return placements


def _local_frame(placement: WingPlacement, size: int) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray]:
    """Pixels of the wing's bounding box and their coordinates along (u) and across (v) the wing."""
    axis = np.array([np.cos(placement.angle), np.sin(placement.angle)])
    normal = np.array([-axis[1], axis[0]]) * (-1 if placement.mirrored else 1)
    corners = [
        np.array(placement.base) + axis * u * placement.length + normal * v * placement.width
        for u in (0.0, 1.0)
        for v in (-0.6, 0.7)
    ]
    low = np.floor(np.min(corners, axis=0)).astype(int).clip(0, size)
    high = np.ceil(np.max(corners, axis=0)).astype(int).clip(0, size)
    ys, xs = np.mgrid[low[1] : high[1], low[0] : high[0]].astype(np.float32)
    dx, dy = xs + 0.5 - placement.base[0], ys + 0.5 - placement.base[1]
    u = (dx * axis[0] + dy * axis[1]) / placement.length
    v = (dx * normal[0] + dy * normal[1]) / placement.width
    return (slice(low[1], high[1]), slice(low[0], high[0])), u, v


def _forewing(u: np.ndarray, v: np.ndarray, pattern: Pattern) -> tuple[np.ndarray, np.ndarray]:
    """Inside-mask and colours of a forewing: narrow at the body, a straight leading edge, widening
    outward to a slanted outer margin whose apex lies on the leading edge."""
    uc = np.clip(u, 0, 1)
    across = 0.3 + 0.7 * np.sqrt(uc) * (1 - 0.25 * uc**2)
    top = -0.35
    t = (v - top) / across * 2 - 1
    rounded_base = u >= 0.04 * t**2
    inside = rounded_base & (np.abs(t) <= 1) & (u <= 1 - 0.3 * (t + 1) / 2 - 0.04 * (t + 1) ** 4 / 4)
    colour = np.empty(u.shape + (3,), np.float32)
    colour[:] = pattern.ground
    core = (np.abs(t) < 0.86) & (u < 0.94)
    if pattern.dennis is not None:
        colour[core & (u < pattern.dennis_extent) & (t > -0.3)] = pattern.dennis
    if pattern.band is not None:
        colour[core & (np.abs(u - pattern.band_pos - pattern.band_slant * t) < pattern.band_width / 2)] = pattern.band
    if pattern.band2 is not None:
        colour[core & (np.abs(u - pattern.band2_pos + 0.1 * t) < pattern.band2_width / 2)] = pattern.band2
    if pattern.spots is not None:
        for t_spot in np.linspace(-0.55, 0.45, pattern.spot_count):
            spot = ((u - pattern.spot_pos - 0.05 * t_spot) / pattern.spot_size) ** 2 + (
                (t - t_spot) / (pattern.spot_size * 3.2)
            ) ** 2
            colour[core & (spot < 1)] = pattern.spots
    return inside, colour


def _hindwing(u: np.ndarray, v: np.ndarray, pattern: Pattern, pale: bool) -> tuple[np.ndarray, np.ndarray]:
    """Inside-mask and colours of a hindwing: a rounded square, pale where the forewing overlapped."""
    t = v * 2
    inside = (np.abs(2 * u - 1) ** 2.2 + np.abs(t * (1.1 - 0.2 * u)) ** 2.2) <= 1
    colour = np.empty(u.shape + (3,), np.float32)
    colour[:] = pattern.ground
    core = (np.abs(t) < 0.84) & (u < 0.9)
    if pattern.dennis is not None:
        colour[core & (u > 0.2) & (u < 0.2 + 0.6 * pattern.dennis_extent)] = pattern.dennis
    if pattern.rays is not None:
        angle = np.arctan2(t, u + 0.35)
        stripes = np.modf((angle / 1.6 + 0.5) * pattern.ray_count)[0]
        colour[core & (u > 0.38) & (stripes < pattern.ray_width)] = pattern.rays
    if pattern.bar is not None:
        colour[core & (np.abs(u - pattern.bar_pos) < pattern.bar_width / 2)] = pattern.bar
    if pattern.margin_spots:
        for t_spot in np.linspace(-0.6, 0.6, 5):
            colour[((u - 0.92) / 0.035) ** 2 + ((t - t_spot) / 0.07) ** 2 < 1] = (240, 240, 232)
    if pale:
        colour[u < 0.2] = PALE_OVERLAP
    return inside, colour


def draw_wings(
    canvas: np.ndarray, mask: np.ndarray, placements: list[WingPlacement], pattern: Pattern, pale: bool
) -> None:
    """Paint each wing into `canvas` (H, W, 3 float) and its class id into `mask`, pixel for pixel."""
    size = canvas.shape[0]
    for placement in placements:
        window, u, v = _local_frame(placement, size)
        if placement.forewing:
            inside, colour = _forewing(u, v, pattern)
        else:
            inside, colour = _hindwing(u, v, pattern, pale)
        canvas[window][inside] = colour[inside]
        mask[window][inside] = placement.class_id


def draw_board(size: int, rng: np.random.Generator, green: bool) -> np.ndarray:
    """The mounting board: flat colour with darker grid lines (a central cross and a frame)."""
    base = np.array(GREEN_BOARD if green else GREY_BOARD, np.float32) + rng.normal(0, 6, 3)
    canvas = np.empty((size, size, 3), np.float32)
    canvas[:] = base
    line = max(1, size // 160)
    darker = base * 0.78
    cx = int(size * rng.uniform(0.48, 0.52))
    cy = int(size * rng.uniform(0.43, 0.47))
    canvas[:, cx : cx + line] = darker
    canvas[cy : cy + line, :] = darker
    for edge in (int(size * 0.03), int(size * 0.97)):
        canvas[edge : edge + line, :] = darker
    return canvas


def draw_ruler(canvas: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> None:
    size = canvas.shape[0]
    x0, x1 = int(size * rng.uniform(0.0, 0.04)), int(size * rng.uniform(0.4, 0.48))
    y0 = int(size * rng.uniform(0.9, 0.93))
    y1 = min(size, y0 + max(4, size // 22))
    canvas[y0:y1, x0:x1] = (226, 226, 222)
    mask[y0:y1, x0:x1] = RULER
    step = max(2, size // 60)
    for k, x in enumerate(range(x0 + step, x1 - 1, step)):
        tick = (y1 - y0) // (1 if k % 5 == 4 else 2)
        canvas[y0 : y0 + tick, x : x + 1] = (40, 40, 40)


def draw_label(canvas: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> None:
    size = canvas.shape[0]
    x0 = int(size * rng.uniform(0.5, 0.56))
    y0 = int(size * rng.uniform(0.86, 0.9))
    x1, y1 = x0 + int(size * 0.2), y0 + int(size * 0.07)
    canvas[y0:y1, x0:x1] = (246, 246, 244)
    mask[y0:y1, x0:x1] = LABEL
    glyph = max(1, size // 90)
    ty = (y0 + y1) // 2 - glyph
    for x in range(x0 + 2 * glyph, x1 - 2 * glyph, 3 * glyph):
        if rng.uniform() < 0.85:
            canvas[ty : ty + 2 * glyph, x : x + 2 * glyph] = (50, 50, 55)


def draw_lens_rim(canvas: np.ndarray, rng: np.random.Generator) -> None:
    """The white rim of a lens cap at the bottom right, part of the background."""
    size = canvas.shape[0]
    ys, xs = np.mgrid[0:size, 0:size]
    cx, cy = size * rng.uniform(0.9, 0.98), size * rng.uniform(0.9, 0.98)
    radius = np.hypot(xs - cx, ys - cy)
    outer = size * 0.11
    canvas[radius < outer] = (236, 236, 236)
    canvas[radius < outer * 0.8] = (250, 250, 250)


def render_specimen(pattern: Pattern, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One photograph (H, W, 3 uint8) and its mask of class ids (H, W uint8)."""
    canvas = draw_board(size, rng, green=rng.uniform() < 0.2)
    mask = np.zeros((size, size), np.uint8)
    if rng.uniform() < 0.5:
        draw_lens_rim(canvas, rng)
    draw_ruler(canvas, mask, rng)
    draw_label(canvas, mask, rng)
    draw_wings(canvas, mask, wing_layout(size, rng), pattern, pale=rng.uniform() < 0.85)
    direction = rng.uniform(0, 2 * np.pi)
    ramp = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    light = 1 + rng.uniform(0.08, 0.22) * (np.cos(direction) * ramp[None, :] + np.sin(direction) * ramp[:, None])
    canvas *= light[..., None]
    canvas += rng.normal(0, 2.5, canvas.shape).astype(np.float32)
    return np.clip(canvas, 0, 255).astype(np.uint8), mask
