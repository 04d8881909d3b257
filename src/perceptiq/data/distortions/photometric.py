"""Photometric shifts and tone quantisation: contrast, brightness, saturation, uniform quantisation.

These act on the encoded (gamma-corrected) sample values. Luma is the full-range BT.601 weighting
``0.299 R + 0.587 G + 0.114 B``. Contrast and saturation blend each sample towards a value inside
[0, 1], so they never clip; the error of every sample grows linearly with the severity.
"""

from __future__ import annotations

import torch

from perceptiq.data.distortions._common import check_level, image_op, luma
from perceptiq.errors import InputError

__all__ = ["contrast_change", "brightness_change", "saturation_change", "quantize"]


@image_op
def contrast_change(image: torch.Tensor, factor: float) -> torch.Tensor:
    """Contrast reduction ``m + factor (x - m)``, ``m`` the image's mean luma.

    Level: ``factor`` in [0, 1], smaller = stronger. ``factor = 1`` is the identity and ``factor = 0``
    a flat image at the mean luma.

    Example:
        >>> contrast_change(torch.tensor([[[[0.0, 1.0]]]]), 0.5).tolist()
        [[[[0.25, 0.75]]]]
    """
    factor = check_level(factor, "contrast_change", "factor", 0.0, 1.0)
    mean = luma(image).mean(dim=(1, 2, 3), keepdim=True)
    return mean + factor * (image - mean)


@image_op
def brightness_change(image: torch.Tensor, delta: float) -> torch.Tensor:
    """Additive brightness shift ``clip(x + delta)``.

    Level: ``delta`` in [-1, 1], larger ``|delta|`` = stronger. A positive ``delta`` brightens and a
    negative one darkens; the severity ladders brighten.

    Example:
        >>> brightness_change(torch.tensor([[[[0.2, 0.9]]]]), 0.25).tolist()
        [[[[0.44999998807907104, 1.0]]]]
    """
    delta = check_level(delta, "brightness_change", "delta", -1.0, 1.0)
    return image + delta


@image_op
def saturation_change(image: torch.Tensor, factor: float) -> torch.Tensor:
    """Desaturation ``Y + factor (x - Y)`` per pixel, ``Y`` its luma.

    Level: ``factor`` in [0, 1], smaller = stronger. ``factor = 0`` gives the grey image ``Y`` in all
    three channels. Grey (1-channel) input has no saturation and is returned unchanged.
    """
    factor = check_level(factor, "saturation_change", "factor", 0.0, 1.0)
    y = luma(image)
    return y + factor * (image - y)


@image_op
def quantize(image: torch.Tensor, levels: int) -> torch.Tensor:
    """Uniform quantisation to ``n = levels`` values per channel, ``round(x (n - 1)) / (n - 1)``.

    Level: integer ``levels`` >= 2, smaller = stronger. Rounding is to the nearest value, halves to
    even (``torch.round``); no dithering, so smooth gradients turn into bands (false contours).

    Example:
        >>> quantize(torch.tensor([[[[0.1, 0.3, 0.8]]]]), 3).tolist()
        [[[[0.0, 0.5, 1.0]]]]
    """
    n = check_level(levels, "quantize", "levels", 2)
    if n != int(n):
        raise InputError(f"quantize: levels must be an integer, got {levels!r}")
    steps = int(n) - 1
    return torch.round(image * steps) / steps
