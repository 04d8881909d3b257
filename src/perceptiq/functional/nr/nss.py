"""Natural-scene-statistics building blocks shared by NIQE and BRISQUE.

Conventions follow the authors' MATLAB releases (Mittal, Moorthy and Bovik, IEEE TIP 2012;
Mittal, Soundararajan and Bovik, IEEE SPL 2013): grey images in ``[0, 255]`` (float64), MSCN
coefficients with a 7x7 Gaussian window of standard deviation 7/6 and stabilising constant C = 1,
and moment-matching fits that pick the shape parameter from the grid ``0.2:0.001:10``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import gamma as gamma_fn

from perceptiq.errors import InputError
from perceptiq.functional._color import (
    GRAY_WEIGHTS,
    GREY_COLOR_SPACES,
    Y_WEIGHTS,
    GreyColorSpace,
    check_color,
)
from perceptiq.functional._resize import BandedMap

__all__ = [
    "SHAPE_GRID",
    "GreyMode",
    "to_grey255",
    "box_half",
    "gaussian_window",
    "FLAT_TOLERANCE",
    "smooth",
    "mscn",
    "ggd_fit",
    "aggd_fit",
    "aggd_pair_fits",
    "gamma_ratio",
]

SHAPE_GRID = np.round(np.arange(0.2, 10.0005, 0.001), 3)
"""Shape parameters searched by the moment-matching fits (MATLAB ``0.2:0.001:10``, 9801 values)."""

GreyMode = GreyColorSpace
"""Grey conversions ``"gray"`` (MATLAB ``rgb2gray``) and ``"y"`` (BT.601 luma): the metrics' ``color``."""


FLAT_TOLERANCE = 1e-9
"""Residuals ``|I - mu|`` below this (grey levels) are set to exactly 0 (see :func:`mscn`)."""


def box_half(x: torch.Tensor) -> torch.Tensor:
    """2x2 box average of (B, H, W) -> (B, H // 2, W // 2) (odd last row/column dropped)."""
    return F.avg_pool2d(x.unsqueeze(1), 2).squeeze(1)


def to_grey255(image: torch.Tensor, mode: GreyMode = "gray", *, quantize: bool = True) -> torch.Tensor:
    """Grey level in ``[0, 255]`` (float64, shape ``(B, H, W)``) of images ``(B, C, H, W)`` in ``[0, 1]``.

    ``"gray"`` is MATLAB ``rgb2gray`` (0.2989 R + 0.5870 G + 0.1140 B, the weights of
    :mod:`perceptiq.functional._color`); ``"y"`` is the BT.601 luma of MATLAB ``rgb2ycbcr``
    (16 + (65.481 R + 128.553 G + 24.966 B) / 255 on 8-bit values, range [16, 235]), the convention
    of many super-resolution papers. One-channel inputs are only scaled. ``quantize`` emulates the
    8-bit images the original scripts read: channels are rounded to integers in ``[0, 255]`` first,
    and the grey level is rounded half away from zero, as MATLAB does for ``uint8``.
    """
    if image.ndim != 4 or image.shape[1] not in (1, 3):
        raise InputError(f"expected images of shape (B, 1 or 3, H, W), got {tuple(image.shape)}")
    check_color(mode, "grey conversion", GREY_COLOR_SPACES)
    coef = (1.0,) if image.shape[1] == 1 else GRAY_WEIGHTS if mode == "gray" else Y_WEIGHTS
    grey = torch.empty(image.shape[0], *image.shape[2:], dtype=torch.float64, device=image.device)
    channel = torch.empty_like(grey)
    for k, weight in enumerate(coef):
        channel.copy_(image[:, k]).mul_(255.0)
        if quantize:
            channel.clamp_(0.0, 255.0).add_(0.5).floor_()
        if k == 0:
            torch.mul(channel, weight, out=grey)
        else:
            grey.add_(channel, alpha=weight)
    if image.shape[1] == 1:
        return grey
    if mode == "y":
        grey.add_(16.0)
    return grey.add_(0.5).floor_() if quantize else grey


def gaussian_window(size: int = 7, sigma: float = 7.0 / 6.0) -> np.ndarray:
    """1-D Gaussian of ``size`` taps, sum 1; its outer product is MATLAB ``fspecial('gaussian')``."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


@lru_cache(maxsize=64)
def _gaussian_map(length: int, padding: str) -> BandedMap:
    g = torch.as_tensor(gaussian_window())
    half = g.numel() // 2
    idx = torch.arange(length)[:, None] + torch.arange(-half, half + 1)[None, :]
    weight = g.expand(length, -1).clone()
    if padding == "zeros":
        weight[(idx < 0) | (idx >= length)] = 0.0
    return BandedMap(idx.clamp(0, length - 1), weight)


def smooth(x: torch.Tensor, padding: Literal["replicate", "zeros"] = "zeros") -> torch.Tensor:
    """7x7 Gaussian (sigma 7/6) smoothing of ``(..., H, W)``, same size, as MATLAB ``filter2``/``imfilter``.

    ``"zeros"`` treats pixels outside as 0 (``filter2(w, I, 'same')``); ``"replicate"`` repeats the
    border pixel (``imfilter(I, w, 'replicate')``). The Gaussian is separable, so rows and columns
    are filtered in turn.
    """
    if padding not in ("replicate", "zeros"):
        raise InputError(f"unknown padding {padding!r}; use 'replicate' or 'zeros'")
    for dim in (-1, -2):
        x = _gaussian_map(x.shape[dim], padding).apply(x, dim)
    return x


def mscn(
    grey: torch.Tensor, *, padding: Literal["replicate", "zeros"] = "zeros", c: float = 1.0
) -> torch.Tensor:
    """Mean-subtracted contrast-normalised coefficients (BRISQUE paper, eq. 1-3), shape ``(B, H, W)``.

    ``(I - mu) / (sigma + c)`` with ``mu`` and ``sigma`` the local Gaussian-weighted mean and
    standard deviation (``sigma = sqrt(|E[I^2] - mu^2|)``, see :func:`smooth` for ``padding``).
    Where the window is flat, exact arithmetic gives ``I - mu = 0`` but floating point leaves
    rounding noise whose sign depends on the order of the convolution's sums (and decides which
    side of the AGGD fit the sample lands on); residuals below :data:`FLAT_TOLERANCE` are therefore
    set to exactly 0, which makes the result independent of device and summation order.

    Args:
        grey: ``(B, H, W)`` grey images in ``[0, 255]``, float64.
    """
    mu = smooth(grey, padding)
    denom = smooth(grey * grey, padding)
    denom.addcmul_(mu, mu, value=-1.0).abs_().sqrt_().add_(c)
    residual = torch.sub(grey, mu, out=mu)
    residual.masked_fill_(residual.abs() < FLAT_TOLERANCE, 0.0)
    return residual.div_(denom)


@lru_cache(maxsize=1)
def _ratio_tables() -> tuple[np.ndarray, np.ndarray]:
    g = SHAPE_GRID
    g1, g2, g3 = gamma_fn(1.0 / g), gamma_fn(2.0 / g), gamma_fn(3.0 / g)
    return g1 * g3 / (g2 * g2), g2 * g2 / (g1 * g3)


def _nearest_shape(table: np.ndarray, values: torch.Tensor) -> torch.Tensor:
    """Grid shape whose ``table`` entry is nearest to each value; ties go to the smaller shape.

    This is MATLAB's ``[~, i] = min(abs(table - v))`` (first minimum) for a strictly monotone
    table, found by binary search; NaN or infinite values give the first grid value, as MATLAB's
    ``min`` over an all-NaN vector does.
    """
    descending = table[0] > table[-1]
    asc = torch.as_tensor(table[::-1].copy() if descending else table, device=values.device)
    n = asc.numel()
    hi = torch.searchsorted(asc, values.contiguous()).clamp(1, n - 1)
    lo = hi - 1
    d_lo = (asc[lo] - values).abs()
    d_hi = (asc[hi] - values).abs()
    idx = torch.where(d_hi <= d_lo, hi, lo) if descending else torch.where(d_lo <= d_hi, lo, hi)
    if descending:
        idx = (n - 1) - idx
    idx = torch.where(torch.isfinite(values), idx, torch.zeros_like(idx))
    return torch.as_tensor(SHAPE_GRID, device=values.device)[idx]


def _sq_norm(x: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(x, 2, dim=-1) ** 2


def ggd_fit(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised Gaussian fit by moment matching (``estimateggdparam``; Sharifi and Leon-Garcia 1995).

    ``rho = E[x^2] / E[|x|]^2`` is matched to ``Gamma(1/a) Gamma(3/a) / Gamma(2/a)^2`` on
    :data:`SHAPE_GRID` (nearest in absolute difference).

    Args:
        x: samples along the last dimension, ``(..., n)``.

    Returns:
        ``(shape, sigma)`` with ``sigma = sqrt(E[x^2])``, each ``(...)``, float64.
    """
    x = x.to(torch.float64)
    n = x.shape[-1]
    mean_sq = _sq_norm(x) / n
    mean_abs = x.abs().sum(dim=-1) / n
    rho = mean_sq / (mean_abs * mean_abs)
    return _nearest_shape(_ratio_tables()[0], rho), torch.sqrt(mean_sq)


def aggd_fit(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Asymmetric generalised Gaussian fit by moment matching (Lasmar, Stitou and Berthoumieu 2009).

    The estimator of the authors' ``estimateaggdparam``: ``sigma_l``/``sigma_r`` are the root mean
    squares of the negative/positive samples, ``g = sigma_l / sigma_r``,
    ``r = E[|x|]^2 / E[x^2]``, ``R = r (g^3 + 1)(g + 1) / (g^2 + 1)^2``, and the shape is the grid
    value whose ``Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a))`` is nearest to ``R``. An empty side gives
    NaN, as in MATLAB.

    Args:
        x: samples along the last dimension, ``(..., n)``.

    Returns:
        ``(shape, sigma_l, sigma_r)``, each ``(...)``, float64.
    """
    x = x.to(torch.float64)
    return _aggd_from_samples(x, torch.empty_like(x), torch.empty_like(x))


def _aggd_from_samples(
    x: torch.Tensor, signs: torch.Tensor, neg: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`aggd_fit` of float64 ``x``, using ``signs``/``neg`` (same shape) as scratch space."""
    n = x.shape[-1]
    torch.sign(x, out=signs)
    pos_minus_neg = signs.sum(dim=-1)
    nonzero = torch.round(_sq_norm(signs))
    n_pos = (nonzero + pos_minus_neg) / 2.0
    n_neg = (nonzero - pos_minus_neg) / 2.0
    torch.clamp(x, max=0.0, out=neg)
    sum_sq = _sq_norm(x)
    neg_sq = _sq_norm(neg)
    left = torch.where(n_neg > 0, torch.sqrt(neg_sq / n_neg), torch.nan)
    right = torch.where(n_pos > 0, torch.sqrt((sum_sq - neg_sq).clamp(min=0.0) / n_pos), torch.nan)
    g = left / right
    mean_abs = (x.sum(dim=-1) - 2.0 * neg.sum(dim=-1)) / n
    r = mean_abs * mean_abs / (sum_sq / n)
    r_norm = r * (g**3 + 1.0) * (g + 1.0) / (g * g + 1.0) ** 2
    return _nearest_shape(_ratio_tables()[1], r_norm), left, right


def aggd_pair_fits(
    coeffs: torch.Tensor, shifts: tuple[tuple[int, int], ...]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`aggd_fit` of ``coeffs * circshift(coeffs, s)`` for each shift ``s`` (rows, cols; each in -1..1).

    The shift is circular over the last two dimensions (MATLAB ``circshift``), i.e. inside each
    image or each patch. Returns ``(shape, sigma_l, sigma_r)``, each ``(..., len(shifts))``.
    """
    h, w = coeffs.shape[-2:]
    lead = coeffs.shape[:-2]
    coeffs = coeffs.to(torch.float64)
    padded = F.pad(coeffs.reshape(-1, 1, h, w), (1, 1, 1, 1), mode="circular").reshape(*lead, h + 2, w + 2)
    product, signs, neg = (torch.empty_like(coeffs) for _ in range(3))
    fits = []
    for dr, dc in shifts:
        torch.mul(coeffs, padded[..., 1 - dr : 1 - dr + h, 1 - dc : 1 - dc + w], out=product)
        fits.append(_aggd_from_samples(product.flatten(-2), signs.flatten(-2), neg.flatten(-2)))
    return tuple(torch.stack(parts, dim=-1) for parts in zip(*fits, strict=True))


def gamma_ratio(num: float, den: float, shape: torch.Tensor) -> torch.Tensor:
    """``Gamma(num / a) / Gamma(den / a)`` for shapes ``a > 0`` (via ``lgamma``; both arguments positive)."""
    return torch.exp(torch.lgamma(num / shape) - torch.lgamma(den / shape))
