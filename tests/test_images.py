"""Every image is decoded in full and brought to upright 8-bit RGB."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from hybridwing.data.images import ImageDecodeError, decode_image


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def photo(heliconius) -> bytes:
    return (heliconius / "images" / "CAM017821.jpg").read_bytes()


def test_plain_rgb_jpeg_is_kept_as_it_is(photo):
    decoded = decode_image(photo)
    assert decoded.image.mode == "RGB" and decoded.image.size == (224, 224)
    assert not decoded.changed


def test_corrupt_jpeg_is_an_error(photo):
    with pytest.raises(ImageDecodeError, match="cannot decode"):
        decode_image(photo[: len(photo) // 2])
    with pytest.raises(ImageDecodeError):
        decode_image(b"<html>not found</html>")


def test_cmyk_becomes_rgb(photo):
    rgb = Image.open(io.BytesIO(photo)).convert("RGB")
    decoded = decode_image(encode(rgb.convert("CMYK"), "JPEG", quality=95))
    assert decoded.original_mode == "CMYK" and decoded.changed
    assert decoded.image.mode == "RGB"
    difference = np.abs(np.asarray(decoded.image, float) - np.asarray(rgb, float)).mean()
    assert difference < 8


def test_sixteen_bit_png_is_scaled_not_clipped():
    values = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    decoded = decode_image(encode(Image.fromarray(values), "PNG"))
    assert decoded.original_mode.startswith("I") and decoded.changed
    pixels = np.asarray(decoded.image)
    assert pixels.shape == (64, 64, 3)
    assert pixels.max() == 255 and pixels.min() == 0
    assert abs(int(pixels[32, 0, 0]) - round(values[32, 0] / 257)) <= 1


def test_transparency_is_composited_on_white():
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    pixels = np.asarray(decode_image(encode(rgba, "PNG")).image)
    assert tuple(pixels[1, 1]) == (255, 255, 255)
    assert tuple(pixels[0, 0]) == (0, 0, 255)


def test_exif_rotation_is_applied():
    wide = Image.new("RGB", (40, 20), (10, 200, 10))
    exif = Image.Exif()
    exif[0x0112] = 6
    decoded = decode_image(encode(wide, "JPEG", exif=exif.tobytes()))
    assert decoded.image.size == (20, 40) and decoded.changed
