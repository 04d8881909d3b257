"""The functional loss API: every loss and target builder of :mod:`perceptiq.losses` as a pure function.

The functions live in themed files (``pairwise``, ``correlation``, ``distribution``, ``heatmap``);
this module gathers them under one name, as ``torch.nn.functional`` does.
"""

from __future__ import annotations

from perceptiq.losses.correlation import (
    average_rank,
    correlation_focal_loss,
    focal_label_smoothing_loss,
    mse_plcc_loss,
    pearson,
    plcc_loss,
    plcc_rank_loss,
    soft_rank,
    srcc_loss,
)
from perceptiq.losses.distribution import (
    adjust_level_probs,
    binary_level_probs,
    deqa_soft_label,
    distribution_fidelity_loss,
    gaussian_level_probs,
    kl_divergence_loss,
    min_variance_histogram,
    multiclass_fidelity_loss,
    normalise_mos,
)
from perceptiq.losses.heatmap import heatmap_loss, soft_dice, soft_iou
from perceptiq.losses.pairwise import (
    deqa_rating_loss,
    fidelity,
    fidelity_loss,
    fidelity_loss_majority_voting,
    gaussian_preference_target,
    group_mean_fidelity_loss,
    grouped_fidelity_loss,
    l1_rank_loss,
    normal_cdf,
    pairwise_fidelity_loss,
    pairwise_logistic_rank_loss,
    preference_target,
    thurstone_probability,
)

__all__ = [
    # pairwise (fidelity family, rank losses)
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
    # correlation and regression
    "pearson",
    "plcc_loss",
    "soft_rank",
    "average_rank",
    "srcc_loss",
    "mse_plcc_loss",
    "plcc_rank_loss",
    "focal_label_smoothing_loss",
    "correlation_focal_loss",
    # distributions
    "normalise_mos",
    "gaussian_level_probs",
    "adjust_level_probs",
    "binary_level_probs",
    "deqa_soft_label",
    "min_variance_histogram",
    "kl_divergence_loss",
    "multiclass_fidelity_loss",
    "distribution_fidelity_loss",
    # heatmaps
    "soft_dice",
    "soft_iou",
    "heatmap_loss",
]
