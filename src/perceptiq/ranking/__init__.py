"""Rank items from paired comparisons (Chen et al., Learning from Model Rankings, 2025): Thurstone Case V and
Bradley-Terry.

Pure functions over count matrices ``C[i, j]`` (votes for ``i`` over ``j``): maximum-likelihood scores with
an optional ridge prior, standard errors from the observed information, bootstrap intervals over votes, the
connectivity checks that decide whether the scores exist, and the ranking stability of Chen et al., Learning
from Model Rankings, 2025, Fig. 4;
and MAD competition (:mod:`perceptiq.ranking.mad`, eq. 1 of Chen et al., Learning from Model Rankings, 2025)
to choose the pairs to show people.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from perceptiq.ranking._graph import DisconnectedComparisonsError, check_comparison_graph
from perceptiq.ranking.paired import (
    PairedComparisonResult,
    bootstrap_scores,
    bradley_terry,
    counts_from_pairs,
    counts_from_records,
    fit_paired,
    log_likelihood,
    paired_mle,
    thurstone,
)
from perceptiq.ranking.stability import StabilityResult, ranking_stability

if TYPE_CHECKING:
    from perceptiq.ranking.mad import mad_select as mad_select
    from perceptiq.ranking.mad import select_mad_pairs as select_mad_pairs

__all__ = [
    "mad_select",
    "select_mad_pairs",
    "DisconnectedComparisonsError",
    "PairedComparisonResult",
    "bootstrap_scores",
    "bradley_terry",
    "check_comparison_graph",
    "counts_from_pairs",
    "counts_from_records",
    "fit_paired",
    "log_likelihood",
    "paired_mle",
    "ranking_stability",
    "StabilityResult",
    "thurstone",
]


def __getattr__(name: str) -> object:
    """MAD selection is loaded on first use: it imports torch, which ranking from votes does not need."""
    if name in ("mad_select", "select_mad_pairs"):
        return getattr(importlib.import_module("perceptiq.ranking.mad"), name)
    raise AttributeError(f"module 'perceptiq.ranking' has no attribute {name!r}")
