"""Ranking stability under fewer comparisons per item pair (Chen et al., Learning from Model Rankings, 2025,
Sec. III-A and Fig. 4).

The paper selects the top ``K`` images per pair of SR methods (in MAD order, eq. 1), collects 2AFC votes
on them, and reports the SRCC between the global ranking from all ``K = 16`` images and the ranking from the
first ``K`` only (SRCC > 0.97 for ``K >= 8``). Here each row of a vote table is one judged image pair (with
the votes for either side); rows of the same item pair form that pair's list. With ``order`` (the selection
rank of each row within its item pair, lower = selected earlier) the top-``K`` subset is the first ``K`` rows
of every list; without it the order is unknown and the SRCC is averaged over ``n_draws`` random orders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr

from perceptiq.errors import InputError
from perceptiq.ranking._solver import maximise
from perceptiq.ranking.paired import (
    Model,
    _check_counts,
    _check_ridge,
    _checked_pairs,
    _link,
    _strongly_connected_rows,
    counts_from_pairs,
)

__all__ = ["StabilityResult", "ranking_stability"]


@dataclass(frozen=True, eq=False)
class StabilityResult:
    """SRCC between the top-``K`` ranking and the full ranking, per ``K`` (mean over draws)."""

    ks: np.ndarray
    srcc: np.ndarray
    srcc_draws: np.ndarray
    n_failed: np.ndarray
    model: str
    order: str

    def to_dict(self) -> dict[str, object]:
        """JSON-ready summary (NaN, for a ``K`` whose every subset lacked an MLE, becomes ``None``)."""
        return {
            "model": self.model,
            "order": self.order,
            "n_draws": int(self.srcc_draws.shape[0]),
            "k": self.ks.tolist(),
            "srcc": [None if np.isnan(x) else float(x) for x in self.srcc],
            "n_failed": self.n_failed.tolist(),
        }


def _positions(group: np.ndarray, tiebreak: np.ndarray) -> np.ndarray:
    """Rank of each row within its group (0 = first), ordering rows of a group by ``tiebreak``."""
    idx = np.lexsort((tiebreak, group))
    sorted_group = group[idx]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_group)) + 1]
    run_start = np.repeat(starts, np.diff(np.r_[starts, sorted_group.size]))
    pos = np.empty_like(idx)
    pos[idx] = np.arange(idx.size) - run_start
    return pos


def ranking_stability(
    first: Sequence[int] | np.ndarray,
    second: Sequence[int] | np.ndarray,
    count_first: Sequence[int] | np.ndarray,
    count_second: Sequence[int] | np.ndarray,
    ks: Sequence[int] | None = None,
    *,
    model: Model = "thurstone",
    ridge: float = 0.0,
    order: Sequence[float] | np.ndarray | None = None,
    n_draws: int = 100,
    seed: int | np.random.Generator | None = 0,
    items: Sequence[str] | None = None,
) -> StabilityResult:
    """SRCC of the ranking from the top-``K`` rows per item pair against the ranking from all rows.

    ``ks`` defaults to ``1 .. (largest number of rows of one pair)``. A subset whose wins graph is not
    strongly connected (with ``ridge == 0``) has no MLE; its SRCC is NaN and it is counted in ``n_failed``.
    Rows without votes are ignored. ``items`` only names the items in the error raised when the full design
    is disconnected.
    """
    a, b = np.asarray(first, dtype=np.int64), np.asarray(second, dtype=np.int64)
    ca, cb = np.asarray(count_first, dtype=float), np.asarray(count_second, dtype=float)
    full, ridge = _check_counts(counts_from_pairs(a, b, ca, cb)), _check_ridge(ridge)
    rank_order = None if order is None else np.asarray(order, dtype=float)
    if rank_order is not None and rank_order.shape != a.shape:
        raise InputError(f"order has {rank_order.size} entries for {a.size} rows")
    if n_draws < 1:
        raise InputError(f"n_draws must be positive, got {n_draws}")
    voted = ca + cb > 0  # rows without votes carry no information and belong to no compared pair
    a, b, ca, cb = a[voted], b[voted], ca[voted], cb[voted]
    rank_order = None if rank_order is None else rank_order[voted]
    n = full.shape[0]
    names = [str(i) for i in range(n)] if items is None else [str(x) for x in items]
    link = _link(model)
    design, wab, wba, _ = _checked_pairs(full, names, ridge)
    pa, pb = design.a, design.b
    reference = maximise(design, wab[None], wba[None], link, ridge)[0][0]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    group = np.searchsorted(pa * n + pb, lo * n + hi)
    forward = a < b
    per_pair = np.bincount(group)
    ks_arr = np.arange(1, per_pair.max() + 1) if ks is None else np.asarray(ks, dtype=np.int64)
    if ks_arr.size == 0 or ks_arr.min() < 1:
        raise InputError(f"ks must be positive integers, got {ks_arr.tolist()}")
    rng = np.random.default_rng(seed)
    if rank_order is None:
        positions = [_positions(group, rng.random(group.size)) for _ in range(n_draws)]
        label = "random"
    else:
        positions = [_positions(group, rank_order)]
        label = "given"
    srcc = np.full((len(positions), ks_arr.size), np.nan)
    for col, k in enumerate(ks_arr):
        keep = np.stack([pos < k for pos in positions])
        win_lo = np.where(forward, ca, cb) * keep
        win_hi = np.where(forward, cb, ca) * keep
        sub_ab = np.stack([np.bincount(group, weights=w, minlength=pa.size) for w in win_lo])
        sub_ba = np.stack([np.bincount(group, weights=w, minlength=pa.size) for w in win_hi])
        ok = _strongly_connected_rows(design, sub_ab, sub_ba) if ridge == 0 else np.ones(len(positions), bool)
        if ok.any():
            scores, _ = maximise(design, sub_ab[ok], sub_ba[ok], link, ridge, reference)
            srcc[np.flatnonzero(ok), col] = [spearmanr(s, reference).statistic for s in scores]
    mean = np.array([np.nan if np.isnan(c).all() else np.nanmean(c) for c in srcc.T])
    return StabilityResult(
        ks=ks_arr,
        srcc=mean,
        srcc_draws=srcc,
        n_failed=np.isnan(srcc).sum(axis=0),
        model=model,
        order=label,
    )
