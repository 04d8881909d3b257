"""Gradient magnitude similarity deviation, Xue, Zhang, Mou & Bovik, IEEE TIP 23(2), 2014, eqs. 4-8.

Steps of the authors' MATLAB ``GMSD.m`` (reproduced exactly): average each image over 2x2 boxes
(``conv2(..., ones(2)/4, 'same')``, zero padding at the bottom/right) and keep every second pixel;
Prewitt gradients ``[1 0 -1; 1 0 -1; 1 0 -1] / 3`` and its transpose with ``conv2(..., 'same')``
(zero padding); gradient magnitudes ``m``; similarity map ``(2 m_x m_y + T) / (m_x^2 + m_y^2 + T)``
with ``T = 170`` on the 0-255 scale (``170 / 255^2`` here); score = standard deviation of the map
(MATLAB ``std2``, normalised by ``N - 1``). Range [0, ~0.35]; 0 = identical; lower is better.

Conventions: ``color="gray"`` (default) with ``quantize=True`` reproduces ``GMSD.m`` on
``rgb2gray`` of 8-bit images (TID2013 calibration values; piq's MATLAB values on greyscale
images). For several channels the score is computed per channel and averaged.
"""

from __future__ import annotations

import torch

from perceptiq.functional._color import ColorSpace
from perceptiq.functional._filters import box_downsample
from perceptiq.functional.fr._common import check_min_size, gradient_magnitude, prepare_pair, similarity

__all__ = ["gmsd"]

_PREWITT_X = ((1.0, 0.0, -1.0), (1.0, 0.0, -1.0), (1.0, 0.0, -1.0))


def gmsd(
    image: torch.Tensor,
    reference: torch.Tensor,
    *,
    color: ColorSpace = "gray",
    crop_border: int = 0,
    data_range: float = 1.0,
    quantize: bool = False,
    t: float = 170.0 / 255.0**2,
) -> torch.Tensor:
    """GMSD of ``image`` against ``reference`` (``(B, C, H, W)`` in ``[0, data_range]``); returns ``(B,)``.

    ``t`` is the stability constant on the [0, 1] scale. A tiny ``1e-20`` inside the square roots
    keeps the gradient finite on flat regions (it moves the score by less than 1e-9).

    Example:
        >>> x = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> gmsd(x, x).tolist()
        [0.0]
    """
    x, y = prepare_pair(
        image,
        reference,
        color=color,
        crop_border=crop_border,
        data_range=data_range,
        quantize=quantize,
        metric="gmsd",
    )
    check_min_size(x, 4, "gmsd", "a 2x downsampled image with at least 2x2 pixels")
    b = x.shape[0]
    both = box_downsample(torch.cat([x, y]), 2, pad="zeros")
    m_x, m_y = gradient_magnitude(both, _PREWITT_X, 3.0, eps=1e-20).split(b)
    return similarity(m_x, m_y, t).flatten(2).std(dim=2).mean(dim=1)
