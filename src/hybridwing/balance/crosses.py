"""Synthetic crosses: the forewings of one subspecies' photograph with the hindwings of another's
(recipe ``wings``), or one photograph's wings with a band of another's pasted in (recipe ``band``).

Heliconius colour patterns are assembled from loci that act on forewing and hindwing elements
apart, so a cross the training table never shows looks much like known parts of two known
subspecies put together. In the dorsal photographs the two forewings lie above the two hindwings
with board (or nearly) between them: the composite keeps the wing pixels of the first photograph
above that gap and the hindwing pixels of the second (moved onto the first's hindwings) below it.
Every other pixel is background, painted later as for any image: no board, and no seam but where a
forewing touched a hindwing. A band composite keeps the first photograph's outline and takes,
within a band of rows across its wings, the second's wing pixels (stretched onto the first's wings):
a cross that looks mostly like one parent, as real crosses often do.
"""

from __future__ import annotations

import itertools
import logging
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

#: The band of rows searched for the gap between the wing rows (fractions of the wings' height).
GAP_SEARCH = (0.25, 0.75)
#: A gap row may hold at most this share of the fullest row's wing pixels (where a forewing touches a
#: hindwing, or a thin stray part of the mask runs across, the split cuts through that little).
GAP_FILL = 0.1
#: The band recipe's band: this share of the wings' height, at a seeded height.
BAND_SHARE = 0.3
#: The band recipe takes none of the donor's outermost pixels: a mask's edge holds board and the
#: pale rim of the wing, which inside another wing would be a seam.
BAND_MARGIN = 3
#: The recipes, each named once.
RECIPES = ("wings", "band")


@dataclass(frozen=True)
class CrossSettings:
    """The ``balance.crosses`` block: how many composites per pair of subspecies of one species, the
    pairs never composed (``[[a, b], ...]``, either order), for example those a validation holds
    out, and the recipes the composites of a pair take in turn."""

    per_pair: int = 0
    exclude: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    recipes: tuple[str, ...] = ("wings",)

    @classmethod
    def from_config(cls, block: dict[str, Any]) -> CrossSettings:
        recipes = tuple(block.get("recipes", ("wings",)))
        unknown = sorted(set(recipes) - set(RECIPES))
        if unknown or not recipes:
            raise ValueError(f"balance.crosses.recipes: {unknown or 'none'}; the recipes are {', '.join(RECIPES)}")
        return cls(
            int(block.get("per_pair", 0)), tuple(tuple(sorted(pair)) for pair in block.get("exclude", [])), recipes
        )

    def allows(self, first: str, second: str) -> bool:
        return tuple(sorted((first, second))) not in self.exclude


def wing_gap_row(mask: np.ndarray) -> int | None:
    """The row between the forewings and the hindwings: the emptiest row in the middle band of the
    wings' height (the middle of the emptiest run), or None when every such row crosses a wing."""
    counts = np.asarray(mask, dtype=bool).sum(axis=1)
    rows = np.flatnonzero(counts)
    if len(rows) < 8:
        return None
    first, last = rows[0], rows[-1]
    low, high = (int(first + fraction * (last - first)) for fraction in GAP_SEARCH)
    band = counts[low : high + 1]
    if band.min() > GAP_FILL * counts.max():
        return None
    emptiest = np.flatnonzero(band == band.min())
    runs = np.split(emptiest, np.flatnonzero(np.diff(emptiest) > 1) + 1)
    widest = max(runs, key=len)
    return int(low + widest[len(widest) // 2])


def _centre(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([ys.mean(), xs.mean()])


def _shifted(values: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """`values` moved by (dy, dx) pixels, with zeros where nothing moved in."""
    out = np.zeros_like(values)
    height, width = values.shape[:2]
    target_y, source_y = slice(max(dy, 0), height + min(dy, 0)), slice(max(-dy, 0), height + min(-dy, 0))
    target_x, source_x = slice(max(dx, 0), width + min(dx, 0)), slice(max(-dx, 0), width + min(-dx, 0))
    out[target_y, target_x] = values[source_y, source_x]
    return out


def compose_cross(
    fore_rgb: np.ndarray, fore_mask: np.ndarray, hind_rgb: np.ndarray, hind_mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """(RGB, 0/1 mask) of the first photograph's forewings with the second's hindwings, moved so
    their centre lies where the first's hindwings were; None when either has no gap between its
    wing rows. Pixels outside the mask are zero (the background is painted afterwards)."""
    fore_gap, hind_gap = wing_gap_row(fore_mask), wing_gap_row(hind_mask)
    if fore_gap is None or hind_gap is None or fore_rgb.shape != hind_rgb.shape:
        return None
    fore_mask, hind_mask = np.asarray(fore_mask, dtype=bool), np.asarray(hind_mask, dtype=bool)
    top = np.zeros_like(fore_mask)
    top[:fore_gap] = fore_mask[:fore_gap]
    hindwings = np.zeros_like(hind_mask)
    hindwings[hind_gap:] = hind_mask[hind_gap:]
    if not top.any() or not hindwings.any() or not fore_mask[fore_gap:].any():
        return None
    dy, dx = np.rint(_centre(fore_mask & ~top) - _centre(hindwings)).astype(int)
    moved = _shifted(hindwings, dy, dx)
    moved[:fore_gap] = False  # nothing of the hindwings above the gap: the forewings stay whole
    mask = top | moved
    rgb = np.where(top[..., None], fore_rgb, 0)
    rgb = np.where(moved[..., None], _shifted(hind_rgb, dy, dx), rgb)
    return rgb.astype(np.uint8), mask.astype(np.uint8)


def eroded(mask: np.ndarray, margin: int) -> np.ndarray:
    """`mask` less every pixel within `margin` pixels (in x and y) of its outside."""
    out = np.asarray(mask, dtype=bool).copy()
    for dy in range(-margin, margin + 1):
        for dx in range(-margin, margin + 1):
            out &= _shifted(np.asarray(mask, dtype=bool), dy, dx)
    return out


Box = tuple[int, int, int, int]


def _box(mask: np.ndarray) -> Box:
    """(top, left, height, width) of the smallest box holding every pixel of `mask`."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return rows[0], cols[0], rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def fitted(values: np.ndarray, source_box: Box, target_box: Box) -> np.ndarray:
    """`values` inside `source_box` stretched (nearest pixel: every value is one of the source's)
    onto `target_box`, zeros elsewhere."""
    top, left, height, width = source_box
    target_top, target_left, target_height, target_width = target_box
    ys = top + ((np.arange(target_height) + 0.5) * height / target_height).astype(int)
    xs = left + ((np.arange(target_width) + 0.5) * width / target_width).astype(int)
    out = np.zeros_like(values)
    out[target_top : target_top + target_height, target_left : target_left + target_width] = values[np.ix_(ys, xs)]
    return out


def paste_band(
    base_rgb: np.ndarray, base_mask: np.ndarray, donor_rgb: np.ndarray, donor_mask: np.ndarray, start: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """(RGB, 0/1 mask) of the base photograph's wings with a band of the donor's wings pasted in: the
    donor's wings stretched onto the base's (their boxes made one, so a forewing lands on a
    forewing), and within a band of `BAND_SHARE` of the wings' height, every pixel that is wing in
    both (the donor's wings less their `BAND_MARGIN` rim) taken from the donor. The band starts at
    `start` (0-1, of the room it has), or at the nearest height where it holds enough of the donor
    (a tenth of the base's wing pixels in it). The base's outline is kept; None when no height
    does, or the sizes differ."""
    base_mask, donor_mask = np.asarray(base_mask, dtype=bool), np.asarray(donor_mask, dtype=bool)
    if base_rgb.shape != donor_rgb.shape or not base_mask.any() or not donor_mask.any():
        return None
    base_box, donor_box = _box(base_mask), _box(donor_mask)
    top_row, height = base_box[0], base_box[2]
    size = max(1, int(round(BAND_SHARE * height)))
    donor_wings = base_mask & fitted(eroded(donor_mask, BAND_MARGIN), donor_box, base_box)
    for candidate in [start, *sorted(np.linspace(0, 1, 11), key=lambda value: abs(value - start))]:
        top = top_row + int(round(candidate * (height - size)))
        band = np.zeros_like(base_mask)
        band[top : top + size] = True
        taken = band & donor_wings
        if taken.any() and taken.sum() >= 0.1 * (band & base_mask).sum():
            rgb = np.where(base_mask[..., None], base_rgb, 0)
            rgb = np.where(taken[..., None], fitted(donor_rgb, donor_box, base_box), rgb)
            return rgb.astype(np.uint8), base_mask.astype(np.uint8)
    return None


def compose(
    recipe: str,
    first_rgb: np.ndarray,
    first_mask: np.ndarray,
    second_rgb: np.ndarray,
    second_mask: np.ndarray,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, str] | None:
    """(RGB, 0/1 mask, the recipe used) of `recipe`: the first's forewings with the second's
    hindwings (``wings``), or the first's wings with a band of the second's at a height drawn from
    `seed` (``band``; a pair no band can join is composed by ``wings``). None when neither can."""
    if recipe == "band":
        banded = paste_band(
            first_rgb, first_mask, second_rgb, second_mask, float(np.random.default_rng([seed, 1]).random())
        )
        if banded is not None:
            return *banded, "band"
    crossed = compose_cross(first_rgb, first_mask, second_rgb, second_mask)
    return None if crossed is None else (*crossed, "wings")


def pair_seed(base: int, first: str, second: str, number: int) -> int:
    return int(np.random.SeedSequence([base, zlib.crc32(f"{first}\0{second}".encode()), number]).generate_state(1)[0])


def exclude_problems(exclude: tuple[tuple[str, str], ...], species_of: dict[str, str]) -> list[str]:
    """What is wrong with each pair of ``balance.crosses.exclude`` given the TRAIN split's subspecies
    and their species: an unknown name (with the known one it differs from in case only), a
    subspecies paired with itself, a pair of two species (never composed anyway)."""
    by_case = {name.lower(): name for name in species_of}
    problems = []
    for pair in exclude:
        unknown = [name for name in pair if name not in species_of]
        if unknown:
            hints = [
                f" (did you mean {by_case[name.lower()]!r}?)" if name.lower() in by_case else "" for name in unknown
            ]
            problems += [
                f"{list(pair)}: {name!r} is no subspecies of the TRAIN split{hint}"
                for name, hint in zip(unknown, hints)
            ]
        elif pair[0] == pair[1]:
            problems.append(f"{list(pair)}: a subspecies paired with itself")
        elif species_of[pair[0]] != species_of[pair[1]]:
            problems.append(f"{list(pair)}: two species ({species_of[pair[0]]}, {species_of[pair[1]]}), never composed")
    return problems


def plan_crosses(train: pd.DataFrame, settings: CrossSettings, seed: int, usable: set[str]) -> pd.DataFrame:
    """One row per composite: for every pair of subspecies of one species (not excluded),
    `settings.per_pair` composites alternating which parent gives the forewings (or the base), each
    from a seeded draw of two TRAIN photographs whose masks have a gap (`usable` image ids), taking
    the recipes in turn.

    `train` holds the TRAIN split's non-hybrids (image_id, label, species). Columns: source_image
    (forewings, or the base), partner (hindwings, or the band), parent_1 (the source's subspecies),
    parent_2, copy, seed, cross (the recipe)."""
    problems = exclude_problems(settings.exclude, dict(zip(train["label"], train["species"])))
    if problems:
        raise ValueError("balance.crosses.exclude:\n  " + "\n  ".join(problems))
    rows = []
    candidates = train[train["image_id"].isin(usable)]
    for _, group in candidates.groupby("species", sort=True):
        by_label = {label: sorted(images["image_id"]) for label, images in group.groupby("label", sort=True)}
        for first, second in itertools.combinations(sorted(by_label), 2):
            if not settings.allows(first, second):
                continue
            for number in range(settings.per_pair):
                fore, hind = (first, second) if (number // len(settings.recipes)) % 2 == 0 else (second, first)
                draw = np.random.default_rng(pair_seed(seed, first, second, number))
                source, partner = (
                    by_label[fore][draw.integers(len(by_label[fore]))],
                    by_label[hind][draw.integers(len(by_label[hind]))],
                )
                rows.append(
                    {
                        "source_image": source,
                        "partner": partner,
                        "parent_1": fore,
                        "parent_2": hind,
                        "copy": number,
                        "seed": pair_seed(seed + 1, first, second, number),
                        "cross": settings.recipes[number % len(settings.recipes)],
                    }
                )
    return pd.DataFrame(rows, columns=["source_image", "partner", "parent_1", "parent_2", "copy", "seed", "cross"])


def is_composite(recipe: pd.Series) -> pd.Series:
    """Which manifest rows are synthetic crosses (their recipe starts by naming the cross)."""
    return recipe.str.startswith('{"cross"')


def pair_key(first: str, second: str) -> tuple[str, str]:
    return tuple(sorted((first, second)))  # type: ignore[return-value]
