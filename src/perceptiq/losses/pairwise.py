"""Pairwise learning-to-rank losses: the fidelity family (Thurstone model) and rank hinge/logistic losses.

Conventions: predictions and targets are quality scores, higher = better. A pair (i, j) has the
target preference ``g = 1`` if item i is better, ``0`` if worse and ``0.5`` on a tie, and the
predicted preference ``p = Phi(delta / sigma)`` (Thurstone). The fidelity loss of a pair is
``1 - sqrt(p g + eps) - sqrt((1 - p)(1 - g) + eps)`` with ``eps`` inside each square root as in
the reference code (LIQE and SR-IQA-SMC25 Fidelity_Loss.py), so its minimum is about ``-sqrt(eps)``, slightly
below 0.

Losses over "all pairs of the batch" use the B(B-1)/2 unordered pairs i < j. On a batch with no
pair (B = 1) the reference code takes an empty mean (NaN); here ``undefined="skip"`` (default)
returns 0 with a zero gradient and ``undefined="nan"`` reproduces the NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from perceptiq.errors import InputError
from perceptiq.losses._checks import (
    Undefined,
    as_float,
    as_vector,
    check_undefined,
    empty_loss,
    pair,
    upper_pairs,
)

__all__ = [
    "normal_cdf",
    "preference_target",
    "fidelity",
    "thurstone_probability",
    "gaussian_preference_target",
    "pairwise_fidelity_loss",
    "fidelity_loss",
    "fidelity_loss_majority_voting",
    "grouped_fidelity_loss",
    "group_mean_fidelity_loss",
    "deqa_rating_loss",
    "pairwise_logistic_rank_loss",
    "l1_rank_loss",
]


def normal_cdf(x: Tensor) -> Tensor:
    """Standard normal CDF ``Phi(x) = (1 + erf(x / sqrt 2)) / 2``, differentiable."""
    return torch.special.ndtr(x)


def preference_target(a: Tensor, b: Tensor) -> Tensor:
    """Target preference of a over b: 1 if a > b, 0 if a < b, 0.5 on a tie (``(sign(a - b) + 1) / 2``).

    This is eq. 2 of VisualQuality-R1 (Wu et al., VisualQuality-R1, 2025) and eq. 3 of the model-rankings
    paper (Chen et al., Learning from Model Rankings, 2025).
    """
    return 0.5 * (torch.sign(a - b) + 1.0)


def fidelity(p: Tensor, g: Tensor, eps: float = 1e-8) -> Tensor:
    """Element-wise fidelity loss ``1 - sqrt(p g + eps) - sqrt((1 - p)(1 - g) + eps)`` (LIQE and SR-IQA-SMC25
    Fidelity_Loss.py).

    ``p`` is the predicted and ``g`` the target probability, both in [0, 1]; lower is better.
    The reward form used by VisualQuality-R1 is ``1 - fidelity(p, g, eps)``.
    """
    return 1.0 - torch.sqrt(p * g + eps) - torch.sqrt((1.0 - p) * (1.0 - g) + eps)


def thurstone_probability(delta: Tensor, variance: Tensor | None = None, *, gamma: float = 0.0) -> Tensor:
    """Probability that the first of two items is better: ``Phi(delta / sqrt(variance + gamma))``.

    ``delta`` is the score difference and ``variance`` the variance of that difference (the sum of
    the two items' variances); ``variance=None`` means Thurstone Case V with unit variance of the
    difference, ``Phi(delta)``.
    """
    if variance is None:
        return normal_cdf(delta)
    return normal_cdf(delta / torch.sqrt(variance + gamma))


def gaussian_preference_target(
    mu_a: Tensor, std_a: Tensor, mu_b: Tensor, std_b: Tensor, *, gamma: float = 1e-8
) -> Tensor:
    """Soft target ``Phi((mu_a - mu_b) / sqrt(std_a^2 + std_b^2 + gamma))`` from MOS means and stds.

    This is DeQA-Score's rating-loss target (DeQA-Score train.sh; gamma = 1e-8 as in its code). The ratio is
    invariant to an affine change of the MOS scale up to gamma, so native-scale MOS may be used.
    """
    return normal_cdf((mu_a - mu_b) / torch.sqrt(std_a**2 + std_b**2 + gamma))


def pairwise_fidelity_loss(
    score_a: Tensor,
    score_b: Tensor,
    target: Tensor,
    *,
    var_a: Tensor | None = None,
    var_b: Tensor | None = None,
    sigma: float = 1.0,
    gamma: float = 1e-8,
    eps: float = 1e-8,
    undefined: Undefined = "skip",
) -> Tensor:
    """Mean fidelity loss over explicit pairs (a_n, b_n) with target probabilities ``target`` (N,).

    Without variances ``p = Phi((a - b) / sigma)`` (Thurstone Case V; sigma = std of the difference,
    1 in LIQE, sqrt 2 in DeQA-Score and in eq. 4 of Chen et al., Learning from Model Rankings, 2025). With
    per-item predicted variances
    ``p = Phi((a - b) / sqrt(var_a + var_b + gamma))``.
    """
    check_undefined(undefined)
    score_a, score_b = pair(score_a, score_b, "score_a", "score_b")
    _, target = pair(score_a, target, "score_a", "target")
    delta = score_a - score_b
    if (var_a is None) != (var_b is None):
        raise InputError("pass both var_a and var_b, or neither")
    if var_a is not None and var_b is not None:
        _, var_a = pair(score_a, var_a, "score_a", "var_a")
        _, var_b = pair(score_a, var_b, "score_a", "var_b")
        p = thurstone_probability(delta, var_a + var_b, gamma=gamma)
    else:
        p = normal_cdf(delta / sigma)
    if delta.numel() == 0:
        return empty_loss(score_a, undefined)
    return fidelity(p, target, eps).mean()


def fidelity_loss(
    pred: Tensor,
    target: Tensor,
    *,
    pred_var: Tensor | None = None,
    sigma: float = 1.0,
    gamma: float = 1e-8,
    eps: float = 1e-8,
    undefined: Undefined = "skip",
) -> Tensor:
    """Fidelity loss over all pairs i < j of a batch (LIQE / SR-IQA ``loss_m4`` term, SR-IQA-SMC25 train.py).

    ``g = (sign(y_i - y_j) + 1) / 2`` from the MOS ``target``; ``p = Phi((yhat_i - yhat_j) / sigma)``
    (Case V, sigma = 1 in the reference), or ``Phi(delta / sqrt(v_i + v_j + gamma))`` with predicted
    per-item variances ``pred_var``. Returns the mean over pairs (B = 1: see ``undefined``).
    """
    check_undefined(undefined)
    pred, target = pair(pred, target)
    i, j = upper_pairs(pred.shape[0], pred.device)
    if i.numel() == 0:
        return empty_loss(pred, undefined)
    g = preference_target(target[i], target[j])
    delta = pred[i] - pred[j]
    if pred_var is None:
        p = normal_cdf(delta / sigma)
    else:
        _, pred_var = pair(pred, pred_var, "pred", "pred_var")
        p = thurstone_probability(delta, pred_var[i] + pred_var[j], gamma=gamma)
    return fidelity(p, g, eps).mean()


def fidelity_loss_majority_voting(
    pred: Tensor, votes: Tensor, *, sigma: float = 1.0, eps: float = 1e-8, undefined: Undefined = "skip"
) -> Tensor:
    """Fidelity loss with targets from a majority vote of M pseudo-labelling models (SR-IQA-SMC25 train.py).

    ``votes`` (B, M) holds each model's score per image; for a pair (i, j), ``g = W / (W + L)`` with W
    (L) the number of models scoring i strictly above (below) j. A pair on which every model ties has
    ``g = 0/0``; the reference then returns NaN for the whole batch (``undefined="nan"``), while the
    default ``"skip"`` leaves such pairs out of the mean.
    """
    check_undefined(undefined)
    pred = as_vector(pred, "pred")
    votes = as_float(votes, "votes", like=pred)
    if votes.ndim != 2 or votes.shape[0] != pred.shape[0]:
        raise InputError(f"votes must have shape (B, M) with B = {pred.shape[0]}, got {tuple(votes.shape)}")
    i, j = upper_pairs(pred.shape[0], pred.device)
    wins = (votes[i] > votes[j]).sum(dim=1).to(pred.dtype)
    losses = (votes[i] < votes[j]).sum(dim=1).to(pred.dtype)
    decided = (wins + losses) > 0
    if undefined == "skip":
        i, j, wins, losses = i[decided], j[decided], wins[decided], losses[decided]
    if i.numel() == 0:
        return empty_loss(pred, undefined)
    g = wins / (wins + losses)
    p = normal_cdf((pred[i] - pred[j]) / sigma)
    return fidelity(p, g, eps).mean()


def grouped_fidelity_loss(
    pred: Tensor,
    target: Tensor,
    group_sizes: Sequence[int],
    *,
    sigma: float = 1.0,
    eps: float = 1e-8,
    undefined: Undefined = "skip",
) -> Tensor:
    """Per-dataset fidelity losses averaged over datasets (LIQE ``loss_m4``, LIQE
    train_unique_clip_weight.py).

    The batch is split into consecutive groups of ``group_sizes`` (one per dataset/task); each group's
    :func:`fidelity_loss` is computed within the group only, and the sum is divided by the number of
    groups. As in the reference, an empty group contributes nothing but is still counted; a group of
    one gives NaN in the reference (``undefined="nan"``) and contributes 0 with the default ``"skip"``.
    """
    check_undefined(undefined)
    pred, target = pair(pred, target)
    sizes = [int(s) for s in group_sizes]
    if not sizes or any(s < 0 for s in sizes) or sum(sizes) != pred.shape[0]:
        raise InputError(f"group_sizes {sizes} must be non-negative and sum to the batch size {len(pred)}")
    total = pred.sum() * 0.0
    for p_group, t_group in zip(torch.split(pred, sizes), torch.split(target, sizes), strict=True):
        if p_group.numel() > 0:
            total = total + fidelity_loss(p_group, t_group, sigma=sigma, eps=eps, undefined=undefined)
    return total / len(sizes)


def group_mean_fidelity_loss(
    pred: Tensor,
    group: Tensor,
    group_score: Tensor,
    *,
    sigma: float = math.sqrt(2.0),
    eps: float = 1e-8,
    undefined: Undefined = "skip",
) -> Tensor:
    """Fidelity loss between group means, for calibration from model rankings (Chen et al., Learning from
    Model Rankings, 2025, eqs. 3-5).

    ``pred`` (N,) are the (rectified) scores Q of images, ``group`` (N,) integer ids in [0, G) of the
    method that produced each image, and ``group_score`` (G,) the methods' global ranking scores
    (higher = better, e.g. Thurstone Case V scale values). For every pair of methods present in the
    batch: ``r_ij`` from eq. 3 (1, 0.5, 0), ``p_ij = Phi((mean_i Q - mean_j Q) / sqrt 2)`` (eq. 4,
    variance fixed to one per item) and the fidelity loss of eq. 5 (eps = 1e-8 inside each root); the
    result is the mean over method pairs. With fewer than two methods in the batch see ``undefined``.
    """
    check_undefined(undefined)
    pred = as_vector(pred, "pred")
    if not isinstance(group, Tensor) or group.dtype not in (torch.int32, torch.int64):
        raise InputError("group must be an integer tensor of method ids")
    group = group.reshape(-1).to(device=pred.device, dtype=torch.int64)
    if group.shape != pred.shape:
        raise InputError(f"group has shape {tuple(group.shape)} but pred has shape {tuple(pred.shape)}")
    group_score = as_float(group_score, "group_score", like=pred).reshape(-1)
    n_groups = group_score.shape[0]
    if group.numel() and (int(group.min()) < 0 or int(group.max()) >= n_groups):
        raise InputError(f"group ids must lie in [0, {n_groups}) (len(group_score))")
    counts = torch.bincount(group, minlength=n_groups)
    sums = torch.zeros(n_groups, dtype=pred.dtype, device=pred.device).index_add(0, group, pred)
    present = counts > 0
    means = sums[present] / counts[present].to(pred.dtype)
    scores = group_score[present]
    i, j = upper_pairs(means.shape[0], pred.device)
    if i.numel() == 0:
        return empty_loss(pred, undefined)
    r = preference_target(scores[i], scores[j])
    p = normal_cdf((means[i] - means[j]) / sigma)
    return fidelity(p, r, eps).mean()


def deqa_rating_loss(
    score_a: Tensor,
    score_b: Tensor,
    mos_a: Tensor,
    std_a: Tensor,
    mos_b: Tensor,
    std_b: Tensor,
    *,
    eps: float = 1e-8,
    undefined: Undefined = "skip",
) -> Tensor:
    """DeQA-Score fixed-std rating loss on image pairs (DeQA-Score train.sh, ``use_fix_std``).

    ``p = Phi((s_a - s_b) / sqrt 2)`` from the predicted scores, target
    ``g = Phi((mos_a - mos_b) / sqrt(std_a^2 + std_b^2 + 1e-8))`` from the ground truth; mean fidelity.
    """
    score_a, score_b = pair(score_a, score_b, "score_a", "score_b")
    g = gaussian_preference_target(
        as_float(mos_a, "mos_a", like=score_a).reshape(-1),
        as_float(std_a, "std_a", like=score_a).reshape(-1),
        as_float(mos_b, "mos_b", like=score_a).reshape(-1),
        as_float(std_b, "std_b", like=score_a).reshape(-1),
    )
    return pairwise_fidelity_loss(score_a, score_b, g, sigma=math.sqrt(2.0), eps=eps, undefined=undefined)


def pairwise_logistic_rank_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Pairwise logistic rank loss ``E_ij[log(1 + exp(-(yhat_i - yhat_j) sign(y_i - y_j)))]`` (Ma et al.,
    VQualA 2025 FIQA report, eq. 6).

    The expectation runs over all pairs i < j of the batch (the summand is symmetric in i, j); a tied
    pair contributes the constant log 2 and no gradient, as the equation says. B = 1 gives 0.
    """
    pred, target = pair(pred, target)
    i, j = upper_pairs(pred.shape[0], pred.device)
    if i.numel() == 0:
        return empty_loss(pred, "skip")
    margin = (pred[i] - pred[j]) * torch.sign(target[i] - target[j])
    return torch.nn.functional.softplus(-margin).mean()


def l1_rank_loss(
    pred: Tensor,
    target: Tensor,
    *,
    l1_weight: float = 1.0,
    rank_weight: float = 1.0,
    hard_threshold: float = 1.0,
    use_margin: bool = False,
) -> Tensor:
    """L1 + rank hinge loss, ``L1RankLoss`` of Wen & Wang (2021), used by MediaForensics in Ma et al., VQualA
    2025 FIQA report.

    ``l1_weight * mean|yhat - y| + rank_weight * R`` with, over ordered pairs whose MOS differ by
    ``0 < |y_j - y_i| < hard_threshold``, ``R = sum relu(m_ij - sign(y_j - y_i)(yhat_j - yhat_i)) /
    (n_pairs + 1e-8)``; ``m_ij = |y_j - y_i|`` with ``use_margin`` else 0. Defaults are the reference's
    (weights 1, threshold 1, no margin). With no eligible pair R = 0.
    """
    pred, target = pair(pred, target)
    l1 = (pred - target).abs().mean()
    d_target = target.unsqueeze(0) - target.unsqueeze(1)  # [i, j] = y_j - y_i
    d_pred = pred.unsqueeze(0) - pred.unsqueeze(1)
    gap = d_target.abs()
    eligible = ((gap < hard_threshold) & (gap > 0)).to(pred.dtype)
    margin = gap if use_margin else torch.zeros_like(gap)
    hinge = torch.relu(margin - torch.sign(d_target) * d_pred) * eligible
    rank = hinge.sum() / (eligible.sum() + 1e-8)
    return l1_weight * l1 + rank_weight * rank
