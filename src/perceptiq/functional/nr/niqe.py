"""NIQE, the Natural Image Quality Evaluator (Mittal, Soundararajan and Bovik, IEEE SPL 20(3), 2013).

The distance between a multivariate Gaussian (MVG) fitted to 36 natural-scene features of an
image's 96x96 patches and the MVG of pristine images (paper eq. 10). Lower is better.

This follows the authors' release ``computequality.m``: MSCN coefficients with ``replicate``
border (``imfilter``), per-patch AGGD fits of the coefficients and of their products with the
four neighbours (``circshift`` inside each patch), two scales (the second from MATLAB
``imresize(im, 0.5)``), the image cropped to whole patches. The release computes the patch
sharpness but scores with *every* patch; the 0.75 sharpness threshold of the paper is used only
to fit the pristine model. So this scores with every patch too, which is what matches the
published values. Patches whose features are undefined (a flat patch has no negative samples)
are dropped from the covariance and from each feature's mean, like MATLAB ``nancov``/``nanmean``.

One deliberate difference: MSCN coefficients of flat windows are exactly 0 here, where MATLAB
leaves rounding noise of arbitrary sign (see :func:`~perceptiq.functional.nr.nss.mscn`). On
images without flat areas the scores equal the release's to about 1e-12; on images with flat
areas they differ by what that noise moves (TID2013 I19, 30 % flat pixels: 0.03).
"""

from __future__ import annotations

import torch

from perceptiq.errors import InputError
from perceptiq.functional._resize import imresize
from perceptiq.functional.nr.nss import aggd_fit, aggd_pair_fits, gamma_ratio, mscn

__all__ = ["NIQE_SHIFTS", "niqe_features", "mvg_distance", "niqe"]

NIQE_SHIFTS: tuple[tuple[int, int], ...] = ((0, 1), (1, 0), (1, 1), (1, -1))
"""Neighbour offsets ``(rows, cols)`` of the paired products, as MATLAB ``circshift`` arguments."""


def _check_grey(grey: torch.Tensor, patch_size: int) -> None:
    if not isinstance(grey, torch.Tensor) or grey.ndim != 3 or not grey.is_floating_point():
        raise InputError("NIQE needs float grey images of shape (B, H, W) in [0, 255]")
    if patch_size < 2 or patch_size % 2:
        raise InputError(f"NIQE patch_size must be a positive even number, got {patch_size}")
    height, width = grey.shape[-2:]
    if height < patch_size or width < patch_size:
        raise InputError(
            f"NIQE needs images of at least {patch_size}x{patch_size} pixels (one whole patch), "
            f"got {height}x{width}"
        )


def _patch_features(coeffs: torch.Tensor, patch: int) -> torch.Tensor:
    """18 features per patch of MSCN coefficients ``(B, H, W)`` cut into ``patch``-sized tiles."""
    b, h, w = coeffs.shape
    tiles = coeffs.reshape(b, h // patch, patch, w // patch, patch).transpose(2, 3)
    tiles = tiles.reshape(b, -1, patch, patch)
    shape0, left0, right0 = aggd_fit(tiles.flatten(-2))
    shape, left, right = aggd_pair_fits(tiles, NIQE_SHIFTS)
    shape = torch.cat([shape0[..., None], shape], dim=-1)
    to_scale = torch.sqrt(gamma_ratio(1.0, 3.0, shape))
    beta_l = torch.cat([left0[..., None], left], dim=-1) * to_scale
    beta_r = torch.cat([right0[..., None], right], dim=-1) * to_scale
    mean = (beta_r - beta_l) * gamma_ratio(2.0, 1.0, shape)
    first = torch.stack([shape[..., 0], (beta_l[..., 0] + beta_r[..., 0]) / 2.0], dim=-1)
    pairs = torch.stack([shape[..., 1:], mean[..., 1:], beta_l[..., 1:], beta_r[..., 1:]], dim=-1)
    return torch.cat([first, pairs.flatten(-2)], dim=-1)


def niqe_features(grey: torch.Tensor, patch_size: int = 96) -> torch.Tensor:
    """NIQE patch features: ``(B, N, 36)`` for grey images ``(B, H, W)`` in ``[0, 255]``.

    ``N`` is the number of whole ``patch_size`` patches (row-major). Per scale the 18 features are
    the AGGD shape and mean scale of the MSCN coefficients, then for each neighbour of
    :data:`NIQE_SHIFTS` the shape, mean, left and right scale of the paired products.
    """
    _check_grey(grey, patch_size)
    x = grey.to(torch.float64)
    rows, cols = x.shape[-2] // patch_size, x.shape[-1] // patch_size
    x = x[:, : rows * patch_size, : cols * patch_size]
    feats = []
    for scale in (1, 2):
        coeffs = mscn(x, padding="replicate")
        feats.append(_patch_features(coeffs, patch_size // scale))
        if scale == 1:
            x = imresize(x, 0.5)
    return torch.cat(feats, dim=-1)


def mvg_distance(features: torch.Tensor, mu: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """NIQE quality ``sqrt((mu_p - mu_d)^T ((S_p + S_d) / 2)^+ (mu_p - mu_d))`` (paper eq. 10).

    Args:
        features: ``(B, N, D)`` patch features; rows with NaN are left out of the covariance and
            NaNs out of each column's mean (MATLAB ``nancov``/``nanmean``).
        mu: pristine mean ``(D,)``.
        cov: pristine covariance ``(D, D)``.

    Returns:
        ``(B,)`` distances, float64; NaN where no patch has defined features.
    """
    feats = features.to(torch.float64)
    mu = mu.to(feats)
    cov = cov.to(feats)
    complete = ~torch.isnan(feats).any(dim=-1, keepdim=True)
    n = complete.sum(dim=1, keepdim=True).to(feats)
    kept = torch.where(complete, feats, 0.0)
    centred = torch.where(complete, kept - kept.sum(dim=1, keepdim=True) / n, 0.0)
    cov_d = centred.transpose(1, 2) @ centred / (n - 1.0).clamp(min=1.0)
    mu_d = torch.nanmean(feats, dim=1)
    pooled = (cov + cov_d) / 2.0
    finite = torch.isfinite(pooled).all(dim=(-2, -1)) & torch.isfinite(mu_d).all(dim=-1)
    eye = torch.eye(pooled.shape[-1], dtype=feats.dtype, device=feats.device)
    inv = torch.linalg.pinv(torch.where(finite[:, None, None], pooled, eye))
    diff = mu - mu_d
    dist = torch.sqrt(torch.einsum("bi,bij,bj->b", diff, inv, diff).clamp(min=0.0))
    return torch.where(finite, dist, torch.nan)


def niqe(grey: torch.Tensor, mu: torch.Tensor, cov: torch.Tensor, patch_size: int = 96) -> torch.Tensor:
    """NIQE scores ``(B,)`` of grey images ``(B, H, W)`` in ``[0, 255]`` against a pristine MVG.

    Lower is better. ``mu``/``cov`` are the pristine model (the published one ships with
    :class:`perceptiq.metrics.nr.NIQE`). Images need at least one whole patch.
    """
    return mvg_distance(niqe_features(grey, patch_size), mu, cov)
