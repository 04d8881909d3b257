"""BRISQUE, Blind/Referenceless Image Spatial Quality Evaluator (Mittal, Moorthy, Bovik, IEEE TIP 2012).

36 natural-scene features (paper Table I: a GGD fit of the MSCN coefficients and AGGD fits of
their products with four neighbours, at the full and the half scale) mapped to a quality score by
an epsilon-SVR with an RBF kernel trained on LIVE. Lower is better (0 to about 100 for typical
images; the SVR can leave that range).

This follows the authors' release (``brisque_feature.m``, ``brisquescore.m``): MSCN with zero
border (``filter2``), ``circshift`` over the whole image, half scale from MATLAB
``imresize(im, 0.5)``, then libsvm's ``svm-scale`` (linear map of each feature from its training
range to ``[-1, 1]``, no clipping) and ``svm-predict``. The release passes the features through text
files (``%f`` for the features, ``%g`` for the scaled values); ``text_io=True`` reproduces that
rounding, which moves scores by up to about 1e-3.

One deliberate difference: MSCN coefficients of flat windows are exactly 0 here, where MATLAB
leaves rounding noise of arbitrary sign (see :func:`~perceptiq.functional.nr.nss.mscn`). On
images without flat areas the scores equal the release's to libsvm's printed precision (TID2013
I04: 3e-7); images with flat areas differ by what that noise moves (I19, 30 % flat pixels: 2.2).
"""

from __future__ import annotations

import torch

from perceptiq.errors import InputError
from perceptiq.functional._resize import imresize
from perceptiq.functional.nr.nss import aggd_pair_fits, gamma_ratio, ggd_fit, mscn

__all__ = ["BRISQUE_SHIFTS", "brisque_features", "scale_features", "svr_rbf_predict", "brisque"]

BRISQUE_SHIFTS: tuple[tuple[int, int], ...] = ((0, 1), (1, 0), (1, 1), (-1, 1))
"""Neighbour offsets ``(rows, cols)`` of the paired products, as MATLAB ``circshift`` arguments."""

MIN_SIZE = 14
"""Smallest accepted height/width: the 7x7 MSCN window must fit in the half-scale image."""


def _scale_features(coeffs: torch.Tensor) -> torch.Tensor:
    shape, sigma = ggd_fit(coeffs.flatten(-2))
    pair_shape, left, right = aggd_pair_fits(coeffs, BRISQUE_SHIFTS)
    mean = (right - left) * gamma_ratio(2.0, 1.0, pair_shape) * torch.sqrt(gamma_ratio(1.0, 3.0, pair_shape))
    pairs = torch.stack([pair_shape, mean, left * left, right * right], dim=-1).flatten(-2)
    return torch.cat([torch.stack([shape, sigma * sigma], dim=-1), pairs], dim=-1)


def brisque_features(grey: torch.Tensor) -> torch.Tensor:
    """The 36 BRISQUE features ``(B, 36)`` of grey images ``(B, H, W)`` in ``[0, 255]``.

    Per scale: GGD shape and variance of the MSCN coefficients, then for each neighbour of
    :data:`BRISQUE_SHIFTS` the AGGD shape, mean, left variance and right variance of the products.
    """
    if not isinstance(grey, torch.Tensor) or grey.ndim != 3 or not grey.is_floating_point():
        raise InputError("BRISQUE needs float grey images of shape (B, H, W) in [0, 255]")
    height, width = grey.shape[-2:]
    if height < MIN_SIZE or width < MIN_SIZE:
        raise InputError(
            f"BRISQUE needs images of at least {MIN_SIZE}x{MIN_SIZE} pixels, got {height}x{width}"
        )
    x = grey.to(torch.float64)
    feats = []
    for scale in (1, 2):
        coeffs = mscn(x, padding="zeros")
        feats.append(_scale_features(coeffs))
        if scale == 1:
            x = imresize(x, 0.5)
    return torch.cat(feats, dim=-1)


def scale_features(
    features: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, lower: float = -1.0, upper: float = 1.0
) -> torch.Tensor:
    """libsvm ``svm-scale``: map each feature linearly from ``[lo, hi]`` to ``[lower, upper]``.

    Values equal to ``lo``/``hi`` map exactly to ``lower``/``upper``; values outside the range are
    extrapolated, not clipped.
    """
    lo = lo.to(features)
    hi = hi.to(features)
    scaled = lower + (upper - lower) * (features - lo) / (hi - lo)
    scaled = torch.where(features == lo, torch.full_like(scaled, lower), scaled)
    return torch.where(features == hi, torch.full_like(scaled, upper), scaled)


def svr_rbf_predict(
    x: torch.Tensor, support: torch.Tensor, coef: torch.Tensor, rho: float, gamma: float
) -> torch.Tensor:
    """Epsilon-SVR decision ``sum_i coef_i exp(-gamma ||x - s_i||^2) - rho`` (libsvm), shape ``(B,)``."""
    support = support.to(x)
    sq_dist = torch.cdist(x, support, compute_mode="donot_use_mm_for_euclid_dist") ** 2
    return torch.exp(-gamma * sq_dist) @ coef.to(x) - rho


def _round_decimals(x: torch.Tensor, decimals: int) -> torch.Tensor:
    return torch.round(x * 10.0**decimals) / 10.0**decimals


def _round_significant(x: torch.Tensor, digits: int) -> torch.Tensor:
    safe = torch.where(x == 0, torch.ones_like(x), x.abs())
    factor = 10.0 ** (digits - 1 - torch.floor(torch.log10(safe)))
    return torch.round(x * factor) / factor


def brisque(
    grey: torch.Tensor,
    support: torch.Tensor,
    coef: torch.Tensor,
    rho: float,
    gamma: float,
    feature_min: torch.Tensor,
    feature_max: torch.Tensor,
    *,
    text_io: bool = True,
) -> torch.Tensor:
    """BRISQUE scores ``(B,)`` of grey images ``(B, H, W)`` in ``[0, 255]``; lower is better.

    Args:
        grey: grey images in ``[0, 255]``.
        support, coef, rho, gamma: the RBF epsilon-SVR (support vectors ``(M, 36)``, their
            coefficients ``(M,)``, the libsvm offset and kernel width).
        feature_min, feature_max: the ``svm-scale`` ranges ``(36,)`` of the training features.
        text_io: round like the release's text files (features to 6 decimals, scaled features
            to 6 significant digits).
    """
    feats = brisque_features(grey)
    if text_io:
        feats = _round_decimals(feats, 6)
    scaled = scale_features(feats, feature_min, feature_max)
    if text_io:
        scaled = _round_significant(scaled, 6)
    return svr_rbf_predict(scaled, support, coef, rho, gamma)
