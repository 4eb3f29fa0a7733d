"""Decode any photograph Pillow reads and bring it to 8-bit RGB, upright."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

KEPT_FORMATS = {"JPEG", "PNG"}
SIXTEEN_BIT_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N"}
EXIF_ORIENTATION = 0x0112
#: A photograph of wings has neither a side this short nor sides this far apart (1x1, 1x100000).
MIN_SIDE = 16
MAX_ASPECT = 20


class ImageDecodeError(ValueError):
    """The bytes are not a complete image Pillow can decode."""


@dataclass(frozen=True)
class DecodedImage:
    """An RGB image and whether it differs from the stored bytes (mode, orientation or format)."""

    image: Image.Image
    changed: bool
    original_mode: str
    original_format: str


#: Formats Pillow names but cannot decode here (stubs, or a helper program it would need).
UNREADABLE_FORMATS = {"BUFR", "GRIB", "HDF5", "WMF", "EPS", "MPEG"}


def image_suffixes() -> set[str]:
    """The file name endings Pillow decodes (``.jpg``, ``.jfif``, ``.gif``, ``.tif``...), lower case."""
    return {
        suffix
        for suffix, name in Image.registered_extensions().items()
        if name in Image.OPEN and name not in UNREADABLE_FORMATS
    }


def check_proportions(image: Image.Image, name: str = "image") -> None:
    """Refuse an image no photograph of wings could be: a side under `MIN_SIDE` pixels or an aspect
    ratio beyond `MAX_ASPECT`:1."""
    width, height = image.size
    if min(width, height) < MIN_SIDE or max(width, height) > MAX_ASPECT * min(width, height):
        raise ImageDecodeError(
            f"cannot use {name}: {width}x{height} pixels is not a photograph of wings "
            f"(a side under {MIN_SIDE} px or sides more than {MAX_ASPECT}:1 apart)"
        )


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB: 16-bit grey scaled down, transparency composited on white, CMYK converted."""
    if image.mode == "RGB":
        return image
    if image.mode in SIXTEEN_BIT_MODES:
        values = np.asarray(image, dtype=np.float64)
        grey = np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        if not np.isfinite(values).all():
            raise ImageDecodeError(f"{int((~np.isfinite(values)).sum())} of {values.size} pixels are NaN or infinite")
        span = max(float(values.max() - values.min()), 1e-12)
        grey = np.rint((values - values.min()) / span * 255).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    if image.mode in {"RGBA", "LA", "PA"} or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def decode_image(data: bytes, name: str = "image") -> DecodedImage:
    """Fully decode `data` (called `name` in messages) and normalise it.

    Anything that goes wrong while decoding (a truncated or corrupt file, an unknown format, a Pillow
    plugin that fails, pixels that are not numbers) raises ImageDecodeError with the cause.
    """
    stream = io.BytesIO(data)
    try:
        with Image.open(stream) as opened:
            opened.load()
            fmt = opened.format or ""
            mode = opened.mode
            rotated = opened.getexif().get(EXIF_ORIENTATION, 1) != 1
            rgb = to_rgb(ImageOps.exif_transpose(opened))
            rgb.load()
    except Exception as error:  # noqa: BLE001 - any failure on untrusted bytes means "not a usable image"
        cause = str(error).replace(repr(stream), name)
        kind = "" if isinstance(error, ImageDecodeError) else f"{error.__class__.__name__}: "
        raise ImageDecodeError(f"cannot decode {name}: {kind}{cause}") from error
    changed = mode != "RGB" or rotated or fmt not in KEPT_FORMATS
    return DecodedImage(rgb, changed, mode, fmt)
