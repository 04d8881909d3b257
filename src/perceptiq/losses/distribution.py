"""Distribution losses and targets: MOS as a distribution over five quality levels, KL, multi-class fidelity.

Level order: unless stated otherwise, level vectors are in **ascending** order, index k holding
level k + 1 (1 = bad ... 5 = excellent). DeQA-Score's own code stores them excellent -> bad; pass
``order="descending"`` to :func:`deqa_soft_label` to get that order.

Targets (no gradient needed):

* :func:`deqa_soft_label`: DeQA-Score's Gaussian-interval label (Han et al., NTIRE 2025 T2I QA report, eqs.
  3-5; DeQA-Score gen_soft_label.py), with
  the reference's quirks kept: no renormalisation after clamping (the sum can exceed 1) and a uniform
  label when the normalised MOS is exactly 3.
* :func:`min_variance_histogram`: UltraR-IQA's histogram (Li et al., ISRG-Q report, 2025, team 2077 Agent):
  the least-variance
  set of R integer ratings in 1..L whose mean is the MOS.

Losses: :func:`kl_divergence_loss` (Han et al., NTIRE 2025 T2I QA report, eq. 6 / DeQA soft KL / UltraR-IQA),
and LIQE's multi-class
fidelity losses (LIQE train_unique_clip_weight.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from perceptiq.errors import InputError
from perceptiq.losses._checks import as_float
from perceptiq.losses.pairwise import fidelity, normal_cdf

__all__ = [
    "normalise_mos",
    "gaussian_level_probs",
    "adjust_level_probs",
    "binary_level_probs",
    "deqa_soft_label",
    "min_variance_histogram",
    "kl_divergence_loss",
    "multiclass_fidelity_loss",
    "distribution_fidelity_loss",
]

_LEVELS = 5
_EPS_BIN = 1e-8  # the reference's interval tolerance in get_binary_probs


def normalise_mos(mos: Tensor, std: Tensor, min_mos: float, max_mos: float) -> tuple[Tensor, Tensor]:
    """Map MOS, std from [m, M] to [1, 5]: ``4 (mos - m) / (M - m) + 1`` and ``4 std / (M - m)``."""
    if not max_mos > min_mos:
        raise InputError(f"max_mos ({max_mos}) must exceed min_mos ({min_mos})")
    width = max_mos - min_mos
    return 4.0 * (mos - min_mos) / width + 1.0, 4.0 * std / width


def gaussian_level_probs(mu: Tensor, sigma: Tensor, density: Literal["pdf", "cdf"] = "pdf") -> Tensor:
    """Raw Gaussian masses of levels x = 1..5, shape (B, 5) (Han et al., NTIRE 2025 T2I QA report, eq. 3;
    DeQA ``level_probs_org``).

    ``"pdf"``: the density ``N(x; mu, sigma)`` at each level (DeQA on KonIQ and KADID);
    ``"cdf"``: the interval mass ``Phi((x + 0.5 - mu)/sigma) - Phi((x - 0.5 - mu)/sigma)`` (eq. 3, SPAQ).
    """
    mu = mu.reshape(-1, 1)
    sigma = sigma.reshape(-1, 1)
    x = torch.arange(1, _LEVELS + 1, dtype=mu.dtype, device=mu.device)
    if density == "pdf":
        z = (x - mu) / sigma
        return torch.exp(-0.5 * z * z) / (sigma * math.sqrt(2.0 * math.pi))
    if density == "cdf":
        return normal_cdf((x + 0.5 - mu) / sigma) - normal_cdf((x - 0.5 - mu) / sigma)
    raise InputError(f"density must be 'pdf' or 'cdf', got {density!r}")


def adjust_level_probs(probs: Tensor, mu: Tensor) -> Tensor:
    """Linear adjustment ``max(alpha p + beta, 0)`` so that sum p = 1 and sum x p = mu (Han et al., NTIRE
    2025 T2I QA report, eqs. 4-5).

    With ``A = sum p`` and ``B = sum x p``: ``alpha = (mu - 3) / (B - 3A + 1e-9)`` and
    ``beta = (1 - alpha A) / 5`` (the reference's closed form, 1e-9 included). Negative masses are
    clamped to 0 without renormalising, as in the reference; mu = 3 gives alpha = 0, a uniform label.
    """
    x = torch.arange(1, _LEVELS + 1, dtype=probs.dtype, device=probs.device)
    mu = mu.reshape(-1, 1)
    a = probs.sum(dim=-1, keepdim=True)
    b = (probs * x).sum(dim=-1, keepdim=True)
    alpha = (mu - 3.0) / (b - 3.0 * a + 1e-9)
    beta = (1.0 - alpha * a) / _LEVELS
    return torch.clamp(alpha * probs + beta, min=0.0)


def binary_level_probs(mu: Tensor) -> Tensor:
    """DeQA's fallback label: mass split linearly between the two integer levels around mu, (B, 5).

    For mu in (k - 1e-8, k + 1 + 1e-8] (first such k of 1..4): ``p_k = (k + 1 + 1e-8 - mu) / (1 + 2e-8)``
    and ``p_(k+1) = (mu - k + 1e-8) / (1 + 2e-8)``, the reference's tolerances included.
    """
    mu = mu.reshape(-1)
    if bool(((mu <= 1.0 - _EPS_BIN) | (mu > _LEVELS + _EPS_BIN) | torch.isnan(mu)).any()):
        raise InputError(f"normalised MOS must lie in [1, 5] for the binary label, got {mu.tolist()}")
    k = torch.ceil(mu - 1.0 - _EPS_BIN).clamp(1, _LEVELS - 1)  # first k with mu <= k + 1 + eps
    left = k - _EPS_BIN
    right = k + 1.0 + _EPS_BIN
    out = torch.zeros(mu.shape[0], _LEVELS, dtype=mu.dtype, device=mu.device)
    idx = (k - 1).to(torch.int64).unsqueeze(1)
    out.scatter_(1, idx, ((right - mu) / (right - left)).unsqueeze(1))
    out.scatter_(1, idx + 1, ((mu - left) / (right - left)).unsqueeze(1))
    return out


def deqa_soft_label(
    mos: Tensor | Sequence[float],
    std: Tensor | Sequence[float],
    *,
    min_mos: float,
    max_mos: float,
    density: Literal["pdf", "cdf"] = "pdf",
    thre_std: float = 0.2,
    thre_diff: float = 0.1,
    order: Literal["ascending", "descending"] = "ascending",
) -> Tensor:
    """DeQA-Score soft label over the five levels, shape (B, 5) (Han et al., NTIRE 2025 T2I QA report, eqs.
    3-5; DeQA-Score gen_soft_label.py).

    Steps: normalise MOS/std to [1, 5] with the dataset's ``min_mos``/``max_mos``; Gaussian masses
    (:func:`gaussian_level_probs`); linear adjustment with clamping (:func:`adjust_level_probs`); the
    binary fallback (:func:`binary_level_probs`) when ``std_norm < thre_std`` or the adjusted label's
    mean misses the MOS by more than ``thre_diff``. Defaults are the released config's. ``order``:
    ascending (bad -> excellent, ours) or descending (excellent -> bad, the reference's storage order).
    """
    mos = _float64_vector(mos, "mos")
    std = _float64_vector(std, "std")
    if std.shape != mos.shape:
        raise InputError(f"std has shape {tuple(std.shape)} but mos has shape {tuple(mos.shape)}")
    if order not in ("ascending", "descending"):
        raise InputError(f"order must be 'ascending' or 'descending', got {order!r}")
    mu, sigma = normalise_mos(mos, std, min_mos, max_mos)
    x = torch.arange(1, _LEVELS + 1, dtype=mu.dtype, device=mu.device)
    safe_sigma = torch.where(sigma > 0, sigma, torch.ones_like(sigma))
    adjusted = adjust_level_probs(gaussian_level_probs(mu, safe_sigma, density), mu)
    diff = ((adjusted * x).sum(dim=-1) - mu).abs()
    fallback = (sigma < thre_std) | (diff > thre_diff)
    binary = binary_level_probs(torch.where(fallback, mu, mu.clamp(1.0, float(_LEVELS))))
    label = torch.where(fallback.unsqueeze(1), binary, adjusted)
    return label.flip(-1) if order == "descending" else label


def min_variance_histogram(
    mos: Tensor | Sequence[float],
    *,
    num_raters: int = 21,
    levels: int = 5,
    rounding: Literal["raise", "nearest"] = "raise",
    tol: float = 1e-6,
) -> Tensor:
    """UltraR-IQA's MOS histogram target: the minimum-variance ratings of ``num_raters`` raters, (B, levels).

    Among all multisets of R integer ratings in 1..L whose mean equals the MOS, the variance is least
    when the ratings differ by at most one (fixed sum, least sum of squares), so the optimum is unique:
    with total ``S = R * MOS``, ``S mod R`` raters give ``floor(S/R) + 1`` and the rest ``floor(S/R)``.
    (Li et al., ISRG-Q report, 2025 describes an exhaustive search; this closed form gives the same
    histogram.) Returns the
    fractions count / R in ascending level order. A MOS whose total S is not an integer (within
    ``tol``) has no exact solution: ``rounding="raise"`` (default) raises, ``"nearest"`` rounds S.
    """
    mos = _float64_vector(mos, "mos")
    if num_raters < 1 or levels < 2:
        raise InputError(f"need num_raters >= 1 and levels >= 2, got {num_raters} and {levels}")
    total = mos * num_raters
    rounded = torch.round(total)
    off = (total - rounded).abs() > tol
    if rounding == "raise" and bool(off.any()):
        bad = mos[off].tolist()
        raise InputError(f"MOS {bad} is not a mean of {num_raters} integer ratings (use rounding='nearest')")
    if rounding not in ("raise", "nearest"):
        raise InputError(f"rounding must be 'raise' or 'nearest', got {rounding!r}")
    if bool(((rounded < num_raters) | (rounded > num_raters * levels)).any()):
        raise InputError(f"MOS {mos.tolist()} must lie in [1, {levels}]")
    low = torch.clamp(torch.floor(rounded / num_raters), max=levels - 1)  # level of the lower raters
    n_high = rounded - low * num_raters
    out = torch.zeros(mos.shape[0], levels, dtype=mos.dtype, device=mos.device)
    idx = (low - 1).to(torch.int64).unsqueeze(1)
    out.scatter_(1, idx, ((num_raters - n_high) / num_raters).unsqueeze(1))
    out.scatter_add_(1, idx + 1, (n_high / num_raters).unsqueeze(1))
    return out


def kl_divergence_loss(
    logits: Tensor,
    target: Tensor,
    *,
    index: Tensor | None = None,
    reduction: Literal["batchmean", "sum", "none"] = "batchmean",
) -> Tensor:
    """``KL(target || softmax(logits))`` per row, reduced (Han et al., NTIRE 2025 T2I QA report, eq. 6
    negated; DeQA soft KL; UltraR-IQA).

    ``logits`` (B, V); ``target`` (B, C) with C = V, or with ``index`` (C,) the target mass sits on those
    columns of the vocabulary (DeQA: the five level-token ids) and is 0 elsewhere, while the softmax
    runs over all V columns. ``0 log 0 = 0``. ``"batchmean"`` divides the total by B (the reference's
    ``F.kl_div(..., reduction="batchmean")``). Eq. 6 as printed is ``sum p log(p_pred / p)``, i.e. the
    negative KL; minimising this loss maximises it. The target is not renormalised.
    """
    if not isinstance(logits, Tensor) or not logits.is_floating_point() or logits.ndim != 2:
        raise InputError("logits must be a floating-point tensor of shape (B, V)")
    target = as_float(target, "target", like=logits)
    log_p = torch.log_softmax(logits, dim=-1)
    if index is not None:
        index = torch.as_tensor(index, dtype=torch.int64, device=logits.device).reshape(-1)
        log_p = log_p[:, index]
    if target.shape != log_p.shape:
        raise InputError(f"target has shape {tuple(target.shape)}, expected {tuple(log_p.shape)}")
    per_row = (torch.special.xlogy(target, target) - target * log_p).sum(dim=-1)
    if reduction == "batchmean":
        return per_row.sum() / max(per_row.shape[0], 1)
    if reduction == "sum":
        return per_row.sum()
    if reduction == "none":
        return per_row
    raise InputError(f"reduction must be 'batchmean', 'sum' or 'none', got {reduction!r}")


def multiclass_fidelity_loss(probs: Tensor, target: Tensor, eps: float = 1e-8) -> Tensor:
    """LIQE scene loss (``Multi_Fidelity_Loss``): per-class binary fidelity, mean over classes and batch.

    ``probs``, ``target``: (B, C) predicted and target class probabilities.
    """
    probs, target = _class_pair(probs, target)
    return fidelity(probs, target, eps).mean()


def distribution_fidelity_loss(probs: Tensor, target: Tensor, eps: float = 1e-8) -> Tensor:
    """LIQE distortion loss ``1 - sum_c sqrt(p_c g_c + eps)`` per row, mean over the batch."""
    probs, target = _class_pair(probs, target)
    return (1.0 - torch.sqrt(probs * target + eps).sum(dim=-1)).mean()


def _float64_vector(x: Tensor | Sequence[float], name: str) -> Tensor:
    """Targets are built in float64 (note that a float32 input 3.2 is already 3.2000000477)."""
    try:
        return torch.as_tensor(x, dtype=torch.float64).reshape(-1)
    except (TypeError, ValueError, RuntimeError) as err:
        raise InputError(f"{name} must be numeric, got {type(x).__name__}: {err}") from err


def _class_pair(probs: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    if not isinstance(probs, Tensor) or not probs.is_floating_point() or probs.ndim != 2:
        raise InputError("probs must be a floating-point tensor of shape (B, C)")
    target = as_float(target, "target", like=probs)
    if target.shape != probs.shape:
        raise InputError(f"target has shape {tuple(target.shape)} but probs has shape {tuple(probs.shape)}")
    return probs, target
