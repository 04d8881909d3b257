"""Filtering helpers with the padding and downsampling rules of the MATLAB reference scripts.

MATLAB facts these helpers reproduce:

- ``fspecial('gaussian', n, s)`` is ``exp(-(x^2 + y^2) / (2 s^2))`` on the integer grid centred on
  the window, normalised to sum one. It is the outer product of the normalised 1-D Gaussian with
  itself, so it is applied here as two 1-D passes (rows, then columns). ``fspecial`` also zeroes
  taps below ``eps * max``; no window used by perceptiq has such taps.
- ``filter2(w, x, 'valid')`` correlates and keeps only outputs whose window lies inside the image.
- ``imfilter(x, h, 'symmetric', 'same')`` pads by mirroring *including* the border pixel
  (``[c b a | a b c]``, scipy's ``reflect`` and numpy's ``symmetric``; not torch's ``reflect``);
  ``conv2(x, h, 'same')`` pads with zeros and rotates ``h`` by 180 degrees. For an ``f x f`` box
  both place the window of output ``i`` on input rows ``i - (f - 1) // 2 ... i - (f - 1) // 2 + f - 1``.
- ``x(1:f:end, 1:f:end)`` keeps rows and columns ``0, f, 2f, ...``: ``ceil(n / f)`` samples.

Separable filters are applied as sums of shifted slices (``sum_k w_k x[k : k + n]``): on CPU this
is several times faster than ``conv2d`` with a depthwise kernel, works on any device and dtype, and
is differentiable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

from perceptiq.errors import InputError

__all__ = [
    "PadMode",
    "gaussian_taps",
    "matlab_round",
    "correlate1d_valid",
    "filter_separable_valid",
    "pad_symmetric",
    "box_downsample",
]

PadMode = Literal["symmetric", "zeros"]


def matlab_round(value: float) -> int:
    """MATLAB ``round``: halves go away from zero (Python's ``round`` goes to even).

    Example:
        >>> matlab_round(4.5), round(4.5)
        (5, 4)
    """
    return int(math.floor(abs(value) + 0.5)) * (1 if value >= 0 else -1)


def gaussian_taps(size: int, sigma: float) -> list[float]:
    """Normalised 1-D Gaussian window of odd ``size`` (``fspecial('gaussian')`` factor), as floats.

    Example:
        >>> taps = gaussian_taps(3, 0.6)
        >>> round(sum(taps), 12), taps[0] == taps[2]
        (1.0, True)
    """
    if size < 1 or size % 2 == 0:
        raise InputError(f"Gaussian window size must be a positive odd integer, got {size}")
    if not sigma > 0:
        raise InputError(f"Gaussian sigma must be positive, got {sigma}")
    half = (size - 1) // 2
    values = [math.exp(-(i * i) / (2.0 * sigma * sigma)) for i in range(-half, half + 1)]
    total = math.fsum(values)
    return [v / total for v in values]


def correlate1d_valid(x: torch.Tensor, taps: Sequence[float], dim: int) -> torch.Tensor:
    """Correlate ``x`` with ``taps`` along ``dim``, keeping only the valid part (length ``n - k + 1``)."""
    k = len(taps)
    n_out = x.shape[dim] - k + 1
    if n_out < 1:
        raise InputError(f"dimension {dim} of size {x.shape[dim]} is smaller than the {k}-tap window")
    if k == 1:
        return x * taps[0]
    out = x.narrow(dim, 0, n_out) * taps[0]
    for i in range(1, k):
        out.add_(x.narrow(dim, i, n_out), alpha=taps[i])
    return out


def filter_separable_valid(x: torch.Tensor, taps: Sequence[float]) -> torch.Tensor:
    """``filter2(taps' * taps, x, 'valid')`` for a batch ``(..., H, W)``: rows first, then columns."""
    return correlate1d_valid(correlate1d_valid(x, taps, x.ndim - 1), taps, x.ndim - 2)


def _symmetric_index(n: int, before: int, after: int, device: torch.device) -> torch.Tensor:
    idx = torch.arange(-before, n + after, device=device) % (2 * n)
    return torch.where(idx >= n, 2 * n - 1 - idx, idx)


def pad_symmetric(x: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """Pad the last two dims by mirroring with the border pixel repeated (MATLAB ``'symmetric'``).

    Example:
        >>> pad_symmetric(torch.tensor([[[1.0, 2.0, 3.0]]]), 0, 0, 2, 1).tolist()
        [[[2.0, 1.0, 1.0, 2.0, 3.0, 3.0]]]
    """
    if top or bottom:
        x = x.index_select(-2, _symmetric_index(x.shape[-2], top, bottom, x.device))
    if left or right:
        x = x.index_select(-1, _symmetric_index(x.shape[-1], left, right, x.device))
    return x


def box_downsample(x: torch.Tensor, factor: int, pad: PadMode = "symmetric") -> torch.Tensor:
    """Mean over ``factor x factor`` boxes placed as MATLAB's ``'same'`` filters, then ``(1:f:end)``.

    ``pad="symmetric"`` reproduces ``imfilter(x, ones(f)/f^2, 'symmetric', 'same')`` (SSIM's
    automatic downsampling, MS-SSIM); ``pad="zeros"`` reproduces ``conv2(x, ones(f)/f^2, 'same')``
    (GMSD, FSIM). Input ``(B, C, H, W)``; output ``(B, C, ceil(H / f), ceil(W / f))``.

    Example:
        >>> box_downsample(torch.arange(1.0, 4.0).view(1, 1, 1, 3), 2, pad="zeros").tolist()
        [[[[0.75, 0.75]]]]
    """
    if factor < 1:
        raise InputError(f"downsampling factor must be >= 1, got {factor}")
    if factor == 1:
        return x
    before = (factor - 1) // 2
    # windows start at padded rows 0, f, 2f, ...; ceil(n / f) of them must fit
    rows_after = max(0, factor * math.ceil(x.shape[-2] / factor) - before - x.shape[-2])
    cols_after = max(0, factor * math.ceil(x.shape[-1] / factor) - before - x.shape[-1])
    if pad == "symmetric":
        x = pad_symmetric(x, before, rows_after, before, cols_after)
    elif pad == "zeros":
        x = F.pad(x, (before, cols_after, before, rows_after))
    else:
        raise InputError(f"unknown padding {pad!r}; use 'symmetric' or 'zeros'")
    return F.avg_pool2d(x, factor, stride=factor)
