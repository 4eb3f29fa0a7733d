"""Colour-pattern recipes of the synthetic subspecies, per-specimen variation and hybrid inheritance.

Species A is *erato*-like (ten subspecies, told apart by pattern); species B is *melpomene*-like with
two subspecies that mimic two of A's, differing from their models only in small details, as
*H. melpomene malleti* and *plesseni* mimic *H. erato lativitta* and *notabilis*.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

RGB = tuple[int, int, int]

BLACK: RGB = (24, 20, 18)
BROWN: RGB = (48, 36, 28)
BLUE_BLACK: RGB = (28, 34, 62)
RED: RGB = (205, 32, 28)
ORANGE: RGB = (236, 112, 22)
YELLOW: RGB = (242, 214, 78)
CREAM: RGB = (238, 230, 196)
WHITE: RGB = (244, 244, 236)


@dataclass(frozen=True)
class Pattern:
    """Pattern elements of one wing set; `None` colours mean the element is absent.

    Forewing positions are along the wing from base (0) to tip (1); hindwing positions from the
    body (0) to the outer margin (1).
    """

    ground: RGB
    band: RGB | None = None
    band_pos: float = 0.55
    band_width: float = 0.2
    band_slant: float = 0.15
    band2: RGB | None = None
    band2_pos: float = 0.8
    band2_width: float = 0.08
    spots: RGB | None = None
    spot_pos: float = 0.72
    spot_count: int = 3
    spot_size: float = 0.07
    dennis: RGB | None = None
    dennis_extent: float = 0.4
    bar: RGB | None = None
    bar_pos: float = 0.45
    bar_width: float = 0.16
    rays: RGB | None = None
    ray_count: int = 8
    ray_width: float = 0.35
    margin_spots: bool = False


@dataclass(frozen=True)
class Subspecies:
    name: str
    species: str
    pattern: Pattern
    mimics: str = ""


SPECIES_A = "erato_like"
SPECIES_B = "melpomene_like"

_RADIATA = Pattern(BLACK, spots=CREAM, spot_pos=0.74, spot_count=3, dennis=ORANGE, dennis_extent=0.45, rays=ORANGE)
_ALBA = Pattern(BLACK, band=RED, band_pos=0.5, band_width=0.1, band_slant=0.3, spots=WHITE, spot_pos=0.7, spot_count=4)

SUBSPECIES: tuple[Subspecies, ...] = (
    Subspecies("radiata", SPECIES_A, _RADIATA),
    Subspecies("rubra", SPECIES_A, Pattern(BLUE_BLACK, band=RED, band_pos=0.56, band_width=0.24, margin_spots=True)),
    Subspecies("alba", SPECIES_A, _ALBA),
    Subspecies("flava", SPECIES_A, Pattern(BLACK, band=RED, band_pos=0.52, band_width=0.2, bar=YELLOW, bar_pos=0.42)),
    Subspecies("aurantia", SPECIES_A, Pattern(BROWN, band=ORANGE, band_pos=0.5, band_width=0.3, band_slant=0.05)),
    Subspecies("bifasciata", SPECIES_A, Pattern(BLACK, band=RED, band_pos=0.45, band_width=0.16, band2=YELLOW)),
    Subspecies("lutea", SPECIES_A, Pattern(BLACK, band=YELLOW, band_pos=0.6, band_width=0.18, bar=YELLOW, bar_pos=0.5)),
    Subspecies("cruenta", SPECIES_A, Pattern(BLACK, dennis=RED, dennis_extent=0.5, rays=RED, ray_count=6)),
    Subspecies(
        "cinerea",
        SPECIES_A,
        Pattern(BROWN, band=WHITE, band_pos=0.62, band_width=0.14, bar=WHITE, bar_pos=0.35, bar_width=0.1),
    ),
    Subspecies(
        "nigra", SPECIES_A, Pattern(BLACK, spots=YELLOW, spot_pos=0.66, spot_count=2, spot_size=0.05, margin_spots=True)
    ),
    Subspecies(
        "mimradiata",
        SPECIES_B,
        replace(_RADIATA, ground=BROWN, spot_pos=0.7, spot_size=0.06, dennis_extent=0.4, ray_count=10, ray_width=0.28),
        mimics="radiata",
    ),
    Subspecies(
        "mimalba",
        SPECIES_B,
        replace(_ALBA, ground=BROWN, band_pos=0.46, band_width=0.13, spot_count=3, spot_size=0.08),
        mimics="alba",
    ),
)
BY_NAME = {subspecies.name: subspecies for subspecies in SUBSPECIES}
SIGNAL_PARENTS = ("radiata", "alba")
MIMIC_PARENTS = ("mimradiata", "mimalba")

_COLOUR_FIELDS = {"ground", "band", "band2", "spots", "dennis", "bar", "rays"}
_ELEMENTS = {
    "band": ("band", "band_pos", "band_width", "band_slant"),
    "band2": ("band2", "band2_pos", "band2_width"),
    "spots": ("spots", "spot_pos", "spot_count", "spot_size"),
    "dennis": ("dennis", "dennis_extent"),
    "bar": ("bar", "bar_pos", "bar_width"),
    "rays": ("rays", "ray_count", "ray_width"),
    "margin": ("margin_spots",),
    "ground": ("ground",),
}


def _jitter_colour(colour: RGB | None, rng: np.random.Generator, amount: float) -> RGB | None:
    if colour is None:
        return None
    shifted = np.clip(np.array(colour) + rng.normal(0, amount, 3), 0, 255)
    return tuple(int(value) for value in shifted)


def vary(pattern: Pattern, rng: np.random.Generator) -> Pattern:
    """One specimen's pattern: colours, positions and widths jittered around the recipe."""
    changes = {}
    for field in fields(Pattern):
        value = getattr(pattern, field.name)
        if field.name in _COLOUR_FIELDS:
            changes[field.name] = _jitter_colour(value, rng, 9.0)
        elif field.name.endswith(("_pos", "_extent")):
            changes[field.name] = float(value + rng.normal(0, 0.025))
        elif field.name.endswith(("_width", "_size")):
            changes[field.name] = float(value * rng.uniform(0.85, 1.15))
        elif field.name == "band_slant":
            changes[field.name] = float(value + rng.normal(0, 0.06))
    return replace(pattern, **changes)


def _blend(first, second):
    if first is None or second is None:
        return first if second is None else second
    if isinstance(first, bool):
        return first or second
    if isinstance(first, tuple):
        return tuple(int(round((a + b) / 2)) for a, b in zip(first, second))
    if isinstance(first, int):
        return int(round((first + second) / 2))
    return (first + second) / 2


def cross(first: Pattern, second: Pattern, rng: np.random.Generator) -> Pattern:
    """A hybrid's pattern: each element from one parent, or an intermediate of both.

    Elements are inherited whole (a band with its position and width); about one element in four
    takes the intermediate form (blended colour, averaged position), as in hybrid zones.
    """
    changes = {}
    for names in _ELEMENTS.values():
        draw = rng.uniform()
        for name in names:
            a, b = getattr(first, name), getattr(second, name)
            changes[name] = a if draw < 0.375 else b if draw < 0.75 else _blend(a, b)
    return replace(first, **changes)
