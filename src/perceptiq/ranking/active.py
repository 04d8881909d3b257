"""Active pair selection for a 2AFC study: compare next where the Thurstone posterior is most uncertain.

A simple form of the idea of ASAP (Mikhailiuk et al., Active Sampling for Pairwise Comparisons via
Approximate Message Passing and Information Gain Maximization, ICPR 2020): with a Gaussian prior of weight
``ridge`` on the scores (``-ridge * ||mu||^2``, as in :func:`perceptiq.ranking.fit_paired`), the Laplace
approximation of the posterior of Thurstone Case V scores is normal with the inverse observed information
as covariance ``S`` at the MAP scores. The variance of the difference of items ``i`` and ``j`` is
``S_ii + S_jj - 2 S_ij``; asking about the pair where it is largest is the greedy uncertainty-sampling rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from perceptiq.errors import InputError
from perceptiq.ranking._solver import LINKS, Design, covariance, maximise
from perceptiq.ranking.paired import _check_counts, _check_ridge

__all__ = ["difference_variances", "most_uncertain_pair"]


def difference_variances(
    counts: Any, pairs: np.ndarray, *, ridge: float = 0.5, model: str = "thurstone"
) -> np.ndarray:
    """Posterior variance of ``mu_i - mu_j`` for each row ``(i, j)`` of ``pairs`` (Laplace approximation).

    ``counts[i, j]`` = votes for ``i`` over ``j``; ``ridge`` > 0 is the prior weight, so the posterior exists
    for any votes, none included (then every difference has variance ``1 / ridge``).

    Example:
        >>> difference_variances([[0, 0], [0, 0]], [[0, 1]], ridge=0.5)
        array([2.])
    """
    c = _check_counts(counts)
    ridge = _check_ridge(ridge)
    if ridge <= 0:
        raise InputError("active selection needs a prior: ridge must be > 0")
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    n = c.shape[0]
    if pairs.size and (pairs.min() < 0 or pairs.max() >= n):
        raise InputError(f"pair indices must lie in [0, {n})")
    if n < 2:
        return np.zeros(len(pairs))
    a, b = np.triu_indices(n, k=1)
    design = Design(a.astype(np.int64), b.astype(np.int64), n)
    wab, wba = c[a, b].astype(float), c[b, a].astype(float)
    link = LINKS[model]
    mu = maximise(design, wab[None], wba[None], link, ridge)[0][0]
    cov = covariance(mu, design, wab, wba, link, ridge)
    i, j = pairs[:, 0], pairs[:, 1]
    return cov[i, i] + cov[j, j] - 2.0 * cov[i, j]


def most_uncertain_pair(counts: Any, pairs: np.ndarray, *, ridge: float = 0.5) -> int:
    """Row of ``pairs`` whose score difference is most uncertain (the first one on a tie)."""
    return int(np.argmax(difference_variances(counts, pairs, ridge=ridge)))
