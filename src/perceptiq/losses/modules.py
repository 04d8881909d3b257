"""Thin ``torch.nn.Module`` wrappers over :mod:`perceptiq.losses.functional`.

Each module stores its hyperparameters and calls the function of the same name; the formula, its
source and the conventions are documented on the function.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from perceptiq.losses import correlation as _corr
from perceptiq.losses import distribution as _dist
from perceptiq.losses import heatmap as _hm
from perceptiq.losses import pairwise as _pw
from perceptiq.losses._checks import Undefined, check_undefined
from perceptiq.losses.heatmap import Overlap

__all__ = [
    "FidelityLoss",
    "PairwiseFidelityLoss",
    "MajorityVoteFidelityLoss",
    "GroupedFidelityLoss",
    "GroupMeanFidelityLoss",
    "DeQARatingLoss",
    "PairwiseLogisticRankLoss",
    "L1RankLoss",
    "PLCCLoss",
    "SRCCLoss",
    "MSEPLCCLoss",
    "PLCCRankLoss",
    "FocalLabelSmoothingLoss",
    "CorrelationFocalLoss",
    "KLDivergenceLoss",
    "MulticlassFidelityLoss",
    "DistributionFidelityLoss",
    "HeatmapLoss",
]


class _Loss(torch.nn.Module):
    """Stores keyword options and shows them in ``repr``."""

    def __init__(self, **options: object) -> None:
        super().__init__()
        if "undefined" in options:
            check_undefined(str(options["undefined"]))
        self.options = options

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.options.items())


class FidelityLoss(_Loss):
    """Fidelity loss over all pairs of a batch; see :func:`~perceptiq.losses.functional.fidelity_loss`."""

    def __init__(
        self, sigma: float = 1.0, gamma: float = 1e-8, eps: float = 1e-8, undefined: Undefined = "skip"
    ) -> None:
        super().__init__(sigma=sigma, gamma=gamma, eps=eps, undefined=undefined)

    def forward(self, pred: Tensor, target: Tensor, pred_var: Tensor | None = None) -> Tensor:
        return _pw.fidelity_loss(pred, target, pred_var=pred_var, **self.options)


class PairwiseFidelityLoss(_Loss):
    """Fidelity loss on explicit pairs; see :func:`~perceptiq.losses.functional.pairwise_fidelity_loss`."""

    def __init__(
        self, sigma: float = 1.0, gamma: float = 1e-8, eps: float = 1e-8, undefined: Undefined = "skip"
    ) -> None:
        super().__init__(sigma=sigma, gamma=gamma, eps=eps, undefined=undefined)

    def forward(
        self,
        score_a: Tensor,
        score_b: Tensor,
        target: Tensor,
        var_a: Tensor | None = None,
        var_b: Tensor | None = None,
    ) -> Tensor:
        return _pw.pairwise_fidelity_loss(score_a, score_b, target, var_a=var_a, var_b=var_b, **self.options)


class MajorityVoteFidelityLoss(_Loss):
    """Majority-vote fidelity loss; see :func:`~perceptiq.losses.functional.fidelity_loss_majority_voting`."""

    def __init__(self, sigma: float = 1.0, eps: float = 1e-8, undefined: Undefined = "skip") -> None:
        super().__init__(sigma=sigma, eps=eps, undefined=undefined)

    def forward(self, pred: Tensor, votes: Tensor) -> Tensor:
        return _pw.fidelity_loss_majority_voting(pred, votes, **self.options)


class GroupedFidelityLoss(_Loss):
    """LIQE ``loss_m4``; see :func:`~perceptiq.losses.functional.grouped_fidelity_loss`."""

    def __init__(self, sigma: float = 1.0, eps: float = 1e-8, undefined: Undefined = "skip") -> None:
        super().__init__(sigma=sigma, eps=eps, undefined=undefined)

    def forward(self, pred: Tensor, target: Tensor, group_sizes: Sequence[int]) -> Tensor:
        return _pw.grouped_fidelity_loss(pred, target, group_sizes, **self.options)


class GroupMeanFidelityLoss(_Loss):
    """Model-ranking calibration loss; see :func:`~perceptiq.losses.functional.group_mean_fidelity_loss`."""

    def __init__(
        self, sigma: float = math.sqrt(2.0), eps: float = 1e-8, undefined: Undefined = "skip"
    ) -> None:
        super().__init__(sigma=sigma, eps=eps, undefined=undefined)

    def forward(self, pred: Tensor, group: Tensor, group_score: Tensor) -> Tensor:
        return _pw.group_mean_fidelity_loss(pred, group, group_score, **self.options)


class DeQARatingLoss(_Loss):
    """DeQA-Score fixed-std rating loss; see :func:`~perceptiq.losses.functional.deqa_rating_loss`."""

    def __init__(self, eps: float = 1e-8, undefined: Undefined = "skip") -> None:
        super().__init__(eps=eps, undefined=undefined)

    def forward(
        self, score_a: Tensor, score_b: Tensor, mos_a: Tensor, std_a: Tensor, mos_b: Tensor, std_b: Tensor
    ) -> Tensor:
        return _pw.deqa_rating_loss(score_a, score_b, mos_a, std_a, mos_b, std_b, **self.options)


class PairwiseLogisticRankLoss(_Loss):
    """Ma et al., VQualA 2025 FIQA report, eq. 6; see
    :func:`~perceptiq.losses.functional.pairwise_logistic_rank_loss`."""

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return _pw.pairwise_logistic_rank_loss(pred, target)


class L1RankLoss(_Loss):
    """L1 + rank hinge loss; see :func:`~perceptiq.losses.functional.l1_rank_loss`."""

    def __init__(
        self,
        l1_weight: float = 1.0,
        rank_weight: float = 1.0,
        hard_threshold: float = 1.0,
        use_margin: bool = False,
    ) -> None:
        super().__init__(
            l1_weight=l1_weight, rank_weight=rank_weight, hard_threshold=hard_threshold, use_margin=use_margin
        )

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return _pw.l1_rank_loss(pred, target, **self.options)


class PLCCLoss(_Loss):
    """``1 - PLCC``; see :func:`~perceptiq.losses.functional.plcc_loss`."""

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__(eps=eps)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return _corr.plcc_loss(pred, target, **self.options)


class SRCCLoss(_Loss):
    """``1 - soft SRCC``; see :func:`~perceptiq.losses.functional.srcc_loss`."""

    def __init__(self, temperature: float = 0.1, eps: float = 1e-8) -> None:
        super().__init__(temperature=temperature, eps=eps)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return _corr.srcc_loss(pred, target, **self.options)


class MSEPLCCLoss(_Loss):
    """``MSE + alpha (1 - PLCC)`` (Ma et al., VQualA 2025 FIQA report, eqs. 2-4); see
    :func:`~perceptiq.losses.functional.mse_plcc_loss`."""

    def __init__(self, alpha: float = 1.0, eps: float = 1e-8) -> None:
        super().__init__(alpha=alpha, eps=eps)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return _corr.mse_plcc_loss(pred, target, **self.options)


class PLCCRankLoss(_Loss):
    """Ma et al., VQualA 2025 FIQA report, eq. 5; see :func:`~perceptiq.losses.functional.plcc_rank_loss`."""

    def __init__(self, alpha: float = 0.5, eps: float = 1e-8) -> None:
        super().__init__(alpha=alpha, eps=eps)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return _corr.plcc_rank_loss(pred, target, **self.options)


class FocalLabelSmoothingLoss(_Loss):
    """Ma et al., VQualA 2025 FIQA report, eqs. 7-10; see
    :func:`~perceptiq.losses.functional.focal_label_smoothing_loss`.

    The smoothing noise is drawn from torch's global generator unless ``noise`` is passed.
    """

    def __init__(self, smoothing: float = 0.0, gamma: float = 2.0, scale: float = 1.0) -> None:
        super().__init__(smoothing=smoothing, gamma=gamma, scale=scale)

    def forward(self, pred: Tensor, target: Tensor, noise: Tensor | None = None) -> Tensor:
        return _corr.focal_label_smoothing_loss(pred, target, noise=noise, **self.options)


class CorrelationFocalLoss(_Loss):
    """Ma et al., VQualA 2025 FIQA report, eq. 11; see
    :func:`~perceptiq.losses.functional.correlation_focal_loss`."""

    def __init__(
        self,
        alpha: float = 0.5,
        lam: float = 0.5,
        smoothing: float = 0.0,
        gamma: float = 2.0,
        scale: float = 1.0,
    ) -> None:
        super().__init__(alpha=alpha, lam=lam, smoothing=smoothing, gamma=gamma, scale=scale)

    def forward(self, pred: Tensor, target: Tensor, noise: Tensor | None = None) -> Tensor:
        return _corr.correlation_focal_loss(pred, target, noise=noise, **self.options)


class KLDivergenceLoss(_Loss):
    """KL to a MOS distribution; see :func:`~perceptiq.losses.functional.kl_divergence_loss`.

    ``index`` (optional) lists the vocabulary columns that carry the target (e.g. level-token ids).
    """

    def __init__(self, index: Sequence[int] | None = None, reduction: str = "batchmean") -> None:
        super().__init__(reduction=reduction)
        self.index = None if index is None else [int(i) for i in index]

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        index = None if self.index is None else torch.tensor(self.index, device=logits.device)
        return _dist.kl_divergence_loss(logits, target, index=index, **self.options)

    def extra_repr(self) -> str:
        return f"index={self.index!r}, {super().extra_repr()}"


class MulticlassFidelityLoss(_Loss):
    """LIQE scene loss; see :func:`~perceptiq.losses.functional.multiclass_fidelity_loss`."""

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__(eps=eps)

    def forward(self, probs: Tensor, target: Tensor) -> Tensor:
        return _dist.multiclass_fidelity_loss(probs, target, **self.options)


class DistributionFidelityLoss(_Loss):
    """LIQE distortion loss; see :func:`~perceptiq.losses.functional.distribution_fidelity_loss`."""

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__(eps=eps)

    def forward(self, probs: Tensor, target: Tensor) -> Tensor:
        return _dist.distribution_fidelity_loss(probs, target, **self.options)


class HeatmapLoss(_Loss):
    """``MSE + (1 - Dice-IoU)`` (Han et al., NTIRE 2025 T2I QA report, eq. 9); see
    :func:`~perceptiq.losses.functional.heatmap_loss`."""

    def __init__(self, overlap: Overlap = "dice", smooth: float = 1e-6) -> None:
        super().__init__(overlap=overlap, smooth=smooth)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return _hm.heatmap_loss(pred, target, **self.options)
