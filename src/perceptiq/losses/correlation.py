"""Correlation and regression losses: PLCC, soft-rank SRCC, MSE + (1 - PLCC), and the Ma et al., VQualA 2025
FIQA report face-IQA family.

All functions take a prediction vector (B,) (or (B, 1)) and a target vector of the same length and
return a scalar; the target gets no gradient in the rank-based losses. Correlations are computed
with a small ``eps`` inside the normalising square roots so that a constant input or a batch of one
gives a correlation of 0 (loss 1) with a finite gradient instead of NaN.

Soft ranking (for the SRCC loss) uses the sigmoid of pairwise differences,
``r_i = 1/2 + sum_j sigmoid((x_i - x_j) / temperature)`` (O(B^2), fine for IQA batch sizes). It is
1-based and tends to the average ("fractional") rank of ``scipy.stats.rankdata`` as the temperature
goes to 0, ties included, so ``1 - srcc_loss`` tends to Spearman's rho (scipy.stats conventions). The
temperature is in the units of the predictions: scale it with the score range.
"""

from __future__ import annotations

import torch
from torch import Tensor

from perceptiq.errors import InputError
from perceptiq.losses._checks import as_vector, pair
from perceptiq.losses.pairwise import pairwise_logistic_rank_loss

__all__ = [
    "pearson",
    "plcc_loss",
    "soft_rank",
    "average_rank",
    "srcc_loss",
    "mse_plcc_loss",
    "plcc_rank_loss",
    "focal_label_smoothing_loss",
    "correlation_focal_loss",
]


def pearson(x: Tensor, y: Tensor, eps: float = 1e-8) -> Tensor:
    """Differentiable Pearson correlation ``sum(xc yc) / sqrt((sum xc^2 + eps)(sum yc^2 + eps))``.

    ``xc``, ``yc`` are the centred vectors; ``eps`` keeps constant input (and B = 1) finite: r = 0.
    """
    x, y = pair(x, y, "x", "y")
    xc = x - x.mean()
    yc = y - y.mean()
    return (xc * yc).sum() / torch.sqrt(((xc * xc).sum() + eps) * ((yc * yc).sum() + eps))


def plcc_loss(pred: Tensor, target: Tensor, eps: float = 1e-8) -> Tensor:
    """PLCC loss ``1 - Pearson(pred, target)`` in [0, 2] (Ma et al., VQualA 2025 FIQA report, eqs. 4 and 13;
    Li et al., ISRG-Q report, 2025 MICV)."""
    return 1.0 - pearson(pred, target, eps)


def soft_rank(x: Tensor, temperature: float = 0.1) -> Tensor:
    """Differentiable 1-based ranks ``1/2 + sum_j sigmoid((x_i - x_j) / temperature)`` of a vector (B,)."""
    if temperature <= 0:
        raise InputError(f"temperature must be positive, got {temperature}")
    x = as_vector(x, "x")
    return 0.5 + torch.sigmoid((x.unsqueeze(1) - x.unsqueeze(0)) / temperature).sum(dim=1)


def average_rank(x: Tensor) -> Tensor:
    """Exact 1-based average ranks (ties share the mean rank), as ``scipy.stats.rankdata``; no gradient."""
    x = as_vector(x, "x").detach()
    below = (x.unsqueeze(0) < x.unsqueeze(1)).sum(dim=1)  # [i] = #{j: x_j < x_i}
    equal = (x.unsqueeze(0) == x.unsqueeze(1)).sum(dim=1)
    return below.to(x.dtype) + 0.5 * (equal.to(x.dtype) + 1.0)


def srcc_loss(pred: Tensor, target: Tensor, temperature: float = 0.1, eps: float = 1e-8) -> Tensor:
    """SRCC loss ``1 - Pearson(soft_rank(pred), average_rank(target))`` (Li et al., ISRG-Q report, 2025 MICV,
    Han et al., NTIRE 2025 T2I QA report, eq. 10)."""
    pred, target = pair(pred, target)
    return 1.0 - pearson(soft_rank(pred, temperature), average_rank(target), eps)


def mse_plcc_loss(pred: Tensor, target: Tensor, alpha: float = 1.0, eps: float = 1e-8) -> Tensor:
    """``MSE + alpha (1 - Pearson)`` (Ma et al., VQualA 2025 FIQA report, eqs. 2-4; ATHENAFace's MSECorrLoss,
    alpha = 1 by default)."""
    pred, target = pair(pred, target)
    return torch.mean((pred - target) ** 2) + alpha * plcc_loss(pred, target, eps)


def plcc_rank_loss(pred: Tensor, target: Tensor, alpha: float = 0.5, eps: float = 1e-8) -> Tensor:
    """``alpha L_PLCC + (1 - alpha) L_Rank`` with the pairwise logistic rank loss (Ma et al., VQualA 2025
    FIQA report, eqs. 5-6).

    The report gives no value of alpha; 0.5 is ours.
    """
    return alpha * plcc_loss(pred, target, eps) + (1.0 - alpha) * pairwise_logistic_rank_loss(pred, target)


def focal_label_smoothing_loss(
    pred: Tensor,
    target: Tensor,
    *,
    smoothing: float = 0.0,
    gamma: float = 2.0,
    scale: float = 1.0,
    noise: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Focal label-smoothing regression loss (Ma et al., VQualA 2025 FIQA report, eqs. 7-10), averaged over
    the batch.

    ``y~ = y + smoothing * n`` with ``n ~ N(0, 1)`` (eq. 7; pass ``noise`` to fix n, or a
    ``generator``), ``m = (yhat - y~)^2`` (eq. 8), ``w = (1 - exp(-m))^gamma`` (eq. 9) and the loss
    ``scale * w * m`` (eq. 10). The focal weight is not detached. The report gives no values: the
    defaults (no smoothing, gamma = 2 as in focal loss, scale = 1) are ours. ``gamma >= 0``.
    """
    pred, target = pair(pred, target)
    if smoothing != 0.0:
        if noise is None:
            noise = torch.randn(pred.shape, generator=generator, dtype=pred.dtype, device=pred.device)
        else:
            _, noise = pair(pred, noise, "pred", "noise")
        target = target + smoothing * noise
    sq = (pred - target) ** 2
    # 1 - exp(-m), floored at the smallest normal number: with gamma < 1 the power's derivative at an
    # exact fit is infinite and would turn the (zero) gradient into NaN.
    base = torch.clamp(-torch.expm1(-sq), min=torch.finfo(sq.dtype).tiny)
    return scale * torch.mean(base**gamma * sq)


def correlation_focal_loss(
    pred: Tensor,
    target: Tensor,
    *,
    alpha: float = 0.5,
    lam: float = 0.5,
    smoothing: float = 0.0,
    gamma: float = 2.0,
    scale: float = 1.0,
    noise: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Conquerit's total objective ``lam L_corr + (1 - lam) L_focal-smooth`` (Ma et al., VQualA 2025 FIQA
    report, eq. 11).

    ``L_corr`` is :func:`plcc_rank_loss` (eq. 5) and ``L_focal-smooth`` is
    :func:`focal_label_smoothing_loss` (eqs. 7-10). The weights are not given in the report (ours).
    """
    corr = plcc_rank_loss(pred, target, alpha)
    focal = focal_label_smoothing_loss(
        pred, target, smoothing=smoothing, gamma=gamma, scale=scale, noise=noise, generator=generator
    )
    return lam * corr + (1.0 - lam) * focal
