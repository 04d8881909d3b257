"""Compression: JPEG (libjpeg via Pillow) and JPEG 2000 (OpenJPEG via Pillow, when Pillow was built with it).

Both round-trip each image through 8-bit samples: the input is rounded to multiples of 1/255, encoded,
decoded and divided by 255, so even the mildest level quantises to 8 bits.
"""

from __future__ import annotations

import io

import torch
from PIL import Image, features

from perceptiq.data.distortions._common import (
    check_level,
    from_pil_images,
    image_op,
    to_pil_images,
)
from perceptiq.errors import PerceptiqError

__all__ = ["DistortionUnavailableError", "jpeg_compression", "jpeg2000_compression", "jpeg2000_available"]


class DistortionUnavailableError(PerceptiqError, RuntimeError):
    """A distortion needs a codec or library this installation lacks; the message names what is missing."""


def _round_trip(images: list[Image.Image], fmt: str, **options: object) -> list[Image.Image]:
    out = []
    for img in images:
        buffer = io.BytesIO()
        img.save(buffer, format=fmt, **options)
        decoded = Image.open(io.BytesIO(buffer.getvalue()))
        decoded.load()
        out.append(decoded)
    return out


@image_op
def jpeg_compression(image: torch.Tensor, quality: int) -> torch.Tensor:
    """JPEG round trip at Pillow ``quality`` (level: integer 1..100, smaller = stronger).

    Pillow's defaults otherwise: baseline, 4:2:0 chroma subsampling for RGB, libjpeg's standard
    quantisation tables scaled by ``quality`` (IJG formula). Grey images are coded as one channel.
    """
    quality = int(check_level(quality, "jpeg_compression", "quality", 1, 100))
    decoded = _round_trip(to_pil_images(image, "jpeg_compression"), "JPEG", quality=quality)
    return from_pil_images(decoded, image)


def jpeg2000_available() -> bool:
    """Whether Pillow was built with OpenJPEG (``PIL.features.check("jpg_2000")``)."""
    return bool(features.check("jpg_2000"))


@image_op
def jpeg2000_compression(image: torch.Tensor, ratio: float) -> torch.Tensor:
    """JPEG 2000 round trip at compression ``ratio`` (level: ratio >= 1 of raw 8-bit size, larger = stronger).

    One quality layer at the given rate (Pillow ``quality_mode="rates"``, ``quality_layers=[ratio]``),
    irreversible 9/7 wavelet, OpenJPEG's other defaults. Raises :class:`DistortionUnavailableError`
    when Pillow lacks OpenJPEG.
    """
    ratio = check_level(ratio, "jpeg2000_compression", "ratio", 1.0)
    if not jpeg2000_available():
        raise DistortionUnavailableError(
            "jpeg2000: this Pillow build has no OpenJPEG (PIL.features.check('jpg_2000') is False); "
            "install a Pillow wheel with JPEG 2000 support"
        )
    decoded = _round_trip(
        to_pil_images(image, "jpeg2000_compression"),
        "JPEG2000",
        quality_mode="rates",
        quality_layers=[ratio],
        irreversible=True,
    )
    return from_pil_images(decoded, image)
