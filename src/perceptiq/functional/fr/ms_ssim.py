"""Multi-scale SSIM, Wang, Simoncelli & Bovik, Asilomar 2003, eq. 7.

``MS-SSIM = cs_1^w1 * ... * cs_4^w4 * ssim_5^w5`` with weights
``(0.0448, 0.2856, 0.3001, 0.2363, 0.1333)``, where ``cs_j`` is the mean contrast-structure term and
``ssim_5`` the mean SSIM at scale ``j`` (11x11 Gaussian window, sigma 1.5, valid windows). Between
scales the images are halved as the authors' MATLAB ``msssim.m`` does: ``imfilter`` with a 2x2 box
and symmetric padding, then every second pixel. Range [0, 1]; higher is better.

``combination="sum"`` selects the script's other pooling, the weighted sum
``sum_j w_j cs_j + w_5 ssim_5`` with the weights normalised to sum one.

Conventions: ``color="gray"`` (default) with ``quantize=True`` is ``msssim.m`` on ``rgb2gray``
of 8-bit images; the TID2013 calibration values (``ms_ssim`` row) are reproduced to all four
published decimals with ``combination="sum"``, while the product form (the paper's eq. 7, the
default here and in piq and pyiqa) differs from them by up to 5e-3. ``color="rgb"`` computes
MS-SSIM per channel and averages, as piq ``multi_scale_ssim`` does. Negative contrast-structure
means (strongly anti-correlated images) are clamped to 0 before the fractional powers, as piq and
pyiqa do; the MATLAB script would return a complex number there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from perceptiq.errors import InputError
from perceptiq.functional._color import ColorSpace
from perceptiq.functional._filters import box_downsample, gaussian_taps
from perceptiq.functional.fr._common import check_min_size, prepare_pair
from perceptiq.functional.fr.ssim import ssim_components

__all__ = ["ms_ssim", "check_combination", "MS_SSIM_WEIGHTS"]

MS_SSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def check_combination(combination: str) -> None:
    """Raise :class:`InputError` unless ``combination`` is ``"product"`` or ``"sum"``."""
    if combination not in ("product", "sum"):
        raise InputError(f"ms_ssim: combination must be 'product' or 'sum', got {combination!r}")


def ms_ssim(
    image: torch.Tensor,
    reference: torch.Tensor,
    *,
    color: ColorSpace = "gray",
    crop_border: int = 0,
    data_range: float = 1.0,
    quantize: bool = False,
    weights: Sequence[float] = MS_SSIM_WEIGHTS,
    kernel_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    combination: Literal["product", "sum"] = "product",
) -> torch.Tensor:
    """MS-SSIM of ``image`` against ``reference`` (``(B, C, H, W)`` in ``[0, data_range]``); returns ``(B,)``.

    Images must be at least ``(kernel_size - 1) * 2^(levels - 1) + 1`` pixels (161 for 5 levels).

    Example:
        >>> x = torch.rand(1, 1, 161, 161, generator=torch.Generator().manual_seed(0))
        >>> ms_ssim(x, x).tolist()
        [1.0]
    """
    x, y = prepare_pair(
        image,
        reference,
        color=color,
        crop_border=crop_border,
        data_range=data_range,
        quantize=quantize,
        metric="ms_ssim",
    )
    check_combination(combination)
    levels = len(weights)
    check_min_size(
        x,
        (kernel_size - 1) * 2 ** (levels - 1) + 1,
        "ms_ssim",
        f"{levels} scales of a {kernel_size}-tap window",
    )
    taps = gaussian_taps(kernel_size, sigma)
    terms = []
    for level in range(levels):
        if level > 0:
            x, y = box_downsample(x, 2), box_downsample(y, 2)
        ssim_val, cs = ssim_components(x, y, taps, k1 * k1, k2 * k2)
        terms.append(ssim_val if level == levels - 1 else cs)
    stacked = torch.stack(terms)  # (levels, B, C)
    w = torch.tensor(weights, dtype=stacked.dtype, device=stacked.device).view(-1, 1, 1)
    if combination == "sum":
        score = (stacked * (w / w.sum())).sum(dim=0)
    else:
        score = stacked.clamp_min(0.0).pow(w).prod(dim=0)
    return score.mean(dim=1)
