"""Colour conversions with the exact conventions of the MATLAB reference scripts.

All functions take float tensors ``(B, 3, H, W)`` with values in ``[0, 1]`` (RGB order) and return
tensors on the same device and dtype. Conventions:

- ``rgb_to_gray``: MATLAB ``rgb2gray``. Its weights are the first row of the inverse of the NTSC
  YIQ-to-RGB matrix ``[[1, 0.956, 0.621], [1, -0.272, -0.647], [1, -1.106, 1.703]]``, i.e.
  ``0.298936 R + 0.587043 G + 0.114021 B`` (documented rounded as 0.2989 / 0.5870 / 0.1140).
  Output range ``[0, 1]``.
- ``rgb_to_y``: luma of ITU-R BT.601 YCbCr as MATLAB ``rgb2ycbcr`` (the super-resolution
  convention): ``Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255``, range ``[16/255, 235/255]``.
  PSNR/SSIM "on Y" in SR papers use this Y with the peak value still 255 (``data_range = 1`` here).
- ``rgb_to_yiq``: NTSC YIQ with the coefficients of the FSIM authors' MATLAB code
  (Y = 0.299 R + 0.587 G + 0.114 B; I = 0.596 R - 0.274 G - 0.322 B; Q = 0.211 R - 0.523 G + 0.312 B).
- the ``color`` option of every metric takes the names of :data:`COLOR_SPACES`: ``"rgb"`` (the three
  channels), ``"y"`` (``rgb_to_y``) and ``"gray"`` (``rgb_to_gray``); metrics that work on one grey
  channel (NIQE, BRISQUE) take ``"gray"`` and ``"y"`` (:data:`GREY_COLOR_SPACES`).
- ``quantize_8bit``: rounding to the 256 levels of an 8-bit image (half away from zero, as MATLAB
  rounds when a conversion is applied to ``uint8`` images), with a straight-through gradient.
"""

from __future__ import annotations

import numpy as np
import torch

from perceptiq.errors import InputError
from perceptiq.functional._color_names import COLOR_SPACES, GREY_COLOR_SPACES, ColorSpace, GreyColorSpace

__all__ = [
    "ColorSpace",
    "GreyColorSpace",
    "COLOR_SPACES",
    "GREY_COLOR_SPACES",
    "check_color",
    "GRAY_WEIGHTS",
    "LUMA_BT601",
    "Y_WEIGHTS",
    "YIQ_MATRIX",
    "rgb_to_gray",
    "rgb_to_y",
    "rgb_to_yiq",
    "quantize_8bit",
    "to_color_space",
]


_NTSC_YIQ_TO_RGB = np.array([[1.0, 0.956, 0.621], [1.0, -0.272, -0.647], [1.0, -1.106, 1.703]])
GRAY_WEIGHTS: tuple[float, float, float] = tuple(float(v) for v in np.linalg.inv(_NTSC_YIQ_TO_RGB)[0])
Y_WEIGHTS: tuple[float, float, float] = (65.481 / 255.0, 128.553 / 255.0, 24.966 / 255.0)
Y_OFFSET = 16.0 / 255.0
LUMA_BT601: tuple[float, float, float] = (0.299, 0.587, 0.114)
"""Full-range ITU-R BT.601 luma weights: ``Y = 0.299 R + 0.587 G + 0.114 B`` (no offset, range [0, 1])."""
YIQ_MATRIX: tuple[tuple[float, float, float], ...] = (
    LUMA_BT601,
    (0.596, -0.274, -0.322),
    (0.211, -0.523, 0.312),
)


def check_color(color: object, where: str, allowed: tuple[str, ...] = tuple(COLOR_SPACES)) -> str:
    """``color`` if it is one of ``allowed`` (names of :data:`COLOR_SPACES`), else a one-line error.

    Example:
        >>> check_color("y", "psnr")
        'y'
    """
    if color in allowed:
        return str(color)
    named = [f"{c!r} ({COLOR_SPACES[c]})" for c in allowed]
    choices = ", ".join(named[:-1]) + f" or {named[-1]}" if len(named) > 1 else named[0]
    if color in COLOR_SPACES:
        raise InputError(f"{where} works on one grey channel and takes no color={color!r}; use {choices}")
    raise InputError(f"{where}: unknown color {color!r}; the colour spaces are {choices}")


def _check_rgb(x: torch.Tensor) -> None:
    if x.ndim != 4 or x.shape[1] != 3:
        raise InputError(f"expected an RGB batch of shape (B, 3, H, W), got {tuple(x.shape)}")


def _weighted_sum(x: torch.Tensor, weights: tuple[float, float, float]) -> torch.Tensor:
    return x[:, 0:1] * weights[0] + x[:, 1:2] * weights[1] + x[:, 2:3] * weights[2]


def rgb_to_gray(x: torch.Tensor) -> torch.Tensor:
    """MATLAB ``rgb2gray`` of an RGB batch in [0, 1]; returns ``(B, 1, H, W)`` in [0, 1].

    Example:
        >>> round(rgb_to_gray(torch.ones(1, 3, 1, 1)).item(), 6)  # weights sum to one
        1.0
    """
    _check_rgb(x)
    return _weighted_sum(x, GRAY_WEIGHTS)


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of MATLAB ``rgb2ycbcr`` for an RGB batch in [0, 1]; returns ``(B, 1, H, W)``.

    Example:
        >>> round(rgb_to_y(torch.ones(1, 3, 1, 1)).item() * 255, 3)  # white maps to 235
        235.0
    """
    _check_rgb(x)
    return _weighted_sum(x, Y_WEIGHTS) + Y_OFFSET


def rgb_to_yiq(x: torch.Tensor) -> torch.Tensor:
    """NTSC YIQ (coefficients of the FSIM MATLAB code) of an RGB batch; returns ``(B, 3, H, W)``."""
    _check_rgb(x)
    return torch.cat([_weighted_sum(x, row) for row in YIQ_MATRIX], dim=1)  # type: ignore[arg-type]


def quantize_8bit(x: torch.Tensor) -> torch.Tensor:
    """Round ``x`` in [0, 1] to multiples of 1/255 (half away from zero), gradient passed straight through.

    Example:
        >>> quantize_8bit(torch.tensor([0.5 / 255, 0.2])).mul(255).tolist()
        [1.0, 51.0]
    """
    levels = x * 255.0
    rounded = torch.where(levels >= 0, torch.floor(levels + 0.5), torch.ceil(levels - 0.5)) / 255.0
    return x + (rounded - x).detach()


def to_color_space(x: torch.Tensor, color: ColorSpace, *, quantize: bool = False) -> torch.Tensor:
    """Convert ``(B, C, H, W)`` in [0, 1] to the channels a metric is computed on.

    ``"rgb"`` keeps all channels; ``"y"`` takes the BT.601 luma (:func:`rgb_to_y`); ``"gray"`` takes
    MATLAB ``rgb2gray`` (:func:`rgb_to_gray`). Single-channel input is taken as luminance already and
    passes unchanged for every choice. With ``quantize=True`` the result is rounded to 8-bit levels,
    which reproduces MATLAB applying the conversion to ``uint8`` images.
    """
    check_color(color, "to_color_space")
    if color != "rgb" and x.shape[1] == 3:
        x = rgb_to_y(x) if color == "y" else rgb_to_gray(x)
    elif color != "rgb" and x.shape[1] != 1:
        raise InputError(f"colour space {color!r} needs 1 or 3 channels, got {x.shape[1]}")
    return quantize_8bit(x) if quantize else x
