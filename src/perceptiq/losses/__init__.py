"""Differentiable training losses for quality models, each a pure function plus a thin ``nn.Module``.

Functions take torch tensors (predictions (B,) or (B, 1), higher = better quality) and return a scalar
loss; they are batched, differentiable in float32/float64, and finite on a batch of one, ties and
constant input. Import the functions from :mod:`perceptiq.losses.functional` and the modules from
here. Families and sources:

* fidelity / Thurstone (LIQE and SR-IQA-SMC25 Fidelity_Loss.py, 4.4, 7, 9.2): :class:`FidelityLoss` (all
  pairs, Case V or
  per-item variances), :class:`PairwiseFidelityLoss`, :class:`MajorityVoteFidelityLoss` (SR-IQA),
  :class:`GroupedFidelityLoss` (LIQE ``loss_m4``), :class:`GroupMeanFidelityLoss` (Chen et al., Learning from
  Model Rankings, 2025, eqs. 3-6),
  :class:`DeQARatingLoss`, :class:`MulticlassFidelityLoss`, :class:`DistributionFidelityLoss` (LIQE);
* rank / correlation (Li et al., ISRG-Q report, 2025, Han et al., NTIRE 2025 T2I QA report, eq. 10, Ma et
  al., VQualA 2025 FIQA report): :class:`PLCCLoss`, :class:`SRCCLoss` (sigmoid soft
  rank), :class:`MSEPLCCLoss` (eqs. 2-4), :class:`PairwiseLogisticRankLoss` (eq. 6),
  :class:`PLCCRankLoss` (eq. 5), :class:`L1RankLoss`, :class:`FocalLabelSmoothingLoss` (eqs. 7-10),
  :class:`CorrelationFocalLoss` (eq. 11);
* distributions (Han et al., NTIRE 2025 T2I QA report, eqs. 3-6, Li et al., ISRG-Q report, 2025):
  :class:`KLDivergenceLoss` with the targets
  :func:`~perceptiq.losses.functional.deqa_soft_label` and
  :func:`~perceptiq.losses.functional.min_variance_histogram`;
* heatmaps (Han et al., NTIRE 2025 T2I QA report, eq. 9): :class:`HeatmapLoss`.

Deliberate differences from the reference code: where the reference takes an empty mean (batch of one,
all-tie majority votes, a one-image dataset in ``loss_m4``) and returns NaN, the default
``undefined="skip"`` leaves the undefined pairs out and returns 0 with a zero gradient
(``undefined="nan"`` restores NaN); correlations put a small eps inside the square root so constant
input gives PLCC 0 instead of NaN.
"""

from __future__ import annotations

from perceptiq.losses import functional as functional
from perceptiq.losses.modules import (
    CorrelationFocalLoss,
    DeQARatingLoss,
    DistributionFidelityLoss,
    FidelityLoss,
    FocalLabelSmoothingLoss,
    GroupedFidelityLoss,
    GroupMeanFidelityLoss,
    HeatmapLoss,
    KLDivergenceLoss,
    L1RankLoss,
    MajorityVoteFidelityLoss,
    MSEPLCCLoss,
    MulticlassFidelityLoss,
    PairwiseFidelityLoss,
    PairwiseLogisticRankLoss,
    PLCCLoss,
    PLCCRankLoss,
    SRCCLoss,
)

__all__ = [
    "functional",
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
