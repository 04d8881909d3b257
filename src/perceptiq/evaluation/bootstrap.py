"""Percentile bootstrap confidence intervals and paired significance tests.

A bootstrap resample of n items is represented by its count vector w (how often each item was
drawn; sum w = n). Statistics are computed for all R resamples at once from the (R, n) count
matrix: Pearson's r from weighted moments, Spearman's rho from per-resample *average* ranks
derived from the counts of each tie group (no sorting per resample). Statistics without a
vectorised form (KRCC, PLCC after a nonlinear fit) are evaluated resample by resample on the
expanded data, which equals resampling the items themselves.

Resampling indices come from ``numpy.random.default_rng(seed)``, so results are reproducible, and
the same seed gives the same resamples to both models of a paired comparison.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
import scipy.stats

from perceptiq.errors import InputError

__all__ = [
    "ConfidenceInterval",
    "PairedDifference",
    "resample_counts",
    "iter_resample_counts",
    "weighted_pearson",
    "weighted_spearman",
    "weighted_pearson_rows",
    "weighted_kendall",
    "expand",
    "percentile_interval",
    "paired_difference",
    "williams_test",
]


@dataclass(frozen=True)
class ConfidenceInterval:
    """A point estimate with its percentile bootstrap interval."""

    estimate: float
    low: float
    high: float
    confidence: float
    n_resamples: int
    std_error: float

    def as_dict(self) -> dict[str, float]:
        """The fields by name, in declaration order."""
        return asdict(self)


@dataclass(frozen=True)
class PairedDifference:
    """Difference of a statistic between model A and model B on the same items (A - B)."""

    statistic: str
    a: float
    b: float
    difference: ConfidenceInterval
    p_value: float
    method: str

    def as_dict(self) -> dict[str, object]:
        """The fields by name, in declaration order, ``difference`` as :meth:`ConfidenceInterval.as_dict`."""
        return asdict(self)


def resample_counts(n: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(R, n) int32 matrix of draw counts of R bootstrap resamples of n items (row sums are n)."""
    if n * n_resamples >= 2**31:
        raise InputError(
            "resample in chunks: n * n_resamples must stay below 2**31 (see iter_resample_counts)"
        )
    idx = rng.integers(0, n, size=(n_resamples, n), dtype=np.int32)
    idx += (np.arange(n_resamples, dtype=np.int32) * n)[:, None]
    counts = np.bincount(idx.ravel(), minlength=n_resamples * n)
    return counts.reshape(n_resamples, n).astype(np.int32)


def iter_resample_counts(
    n: int, n_resamples: int, seed: int | None, chunk_elements: int = 4_000_000, n_chunks: int = 1
) -> Iterator[np.ndarray]:
    """Yield the count matrices of ``n_resamples`` resamples in chunks of bounded memory.

    At most ``chunk_elements`` counts per chunk, and at least ``n_chunks`` chunks when there are
    enough resamples (for parallel evaluation). Chunking does not change the resamples: the draws come
    from one stream in order, row after row.
    """
    rng = np.random.default_rng(seed)
    rows = max(1, min(chunk_elements // max(n, 1), -(-n_resamples // max(n_chunks, 1))))
    done = 0
    while done < n_resamples:
        take = min(rows, n_resamples - done)
        yield resample_counts(n, take, rng)
        done += take


def weighted_pearson(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Pearson's r of 1-D (x, y) under each row of weights ``w`` (R, n); NaN where x or y is constant.

    One matrix product gives the weighted moments of all resamples (data centred on the full-sample
    means first, so the moment differences do not cancel catastrophically).
    """
    xc = x - x.mean()
    yc = y - y.mean()
    moments = np.asarray(w, dtype=np.float64) @ np.stack(
        [xc, yc, xc * xc, yc * yc, xc * yc], axis=1
    )  # (R, 5)
    total = w.sum(axis=1, dtype=np.float64)
    mx, my = moments[:, 0] / total, moments[:, 1] / total
    sxx = moments[:, 2] / total - mx * mx
    syy = moments[:, 3] / total - my * my
    sxy = moments[:, 4] / total - mx * my
    with np.errstate(invalid="ignore", divide="ignore"):
        r = sxy / np.sqrt(sxx * syy)
    r[(sxx <= 1e-14 * np.mean(xc * xc)) | (syy <= 1e-14 * np.mean(yc * yc))] = np.nan
    return np.clip(r, -1.0, 1.0)


def _doubled_centred_ranks(sorted_values: np.ndarray, w_sorted: np.ndarray) -> np.ndarray:
    """``2 rank - (n + 1)`` per resample row (exact int32) for items already sorted by value.

    In a resample, tie group g (count c_g) occupies the positions after all smaller groups, so its
    average rank is ``cumsum(c)_g - (c_g - 1) / 2``; with no ties each item is its own group.
    Doubling keeps the half-integer average ranks exact in integers.
    """
    n = int(w_sorted[0].sum()) if w_sorted.shape[0] else 0
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    if starts.size == sorted_values.size:
        ranks = np.cumsum(w_sorted, axis=1, dtype=np.int32)
        ranks *= 2
        ranks -= w_sorted
    else:
        counts = np.add.reduceat(w_sorted, starts, axis=1)  # (R, groups)
        group_rank = 2 * np.cumsum(counts, axis=1, dtype=np.int32) - counts
        ranks = np.repeat(group_rank, np.diff(np.r_[starts, sorted_values.size]), axis=1)
    ranks -= n
    return ranks


def weighted_spearman(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Spearman's rho (average ranks) of (x, y) in each resample given by the count rows of ``w`` (R, n).

    Ranks are formed in x-sorted and y-sorted item order from cumulative counts (no per-resample
    sort), in exact integer arithmetic; every resample's mean rank is (n + 1)/2, so they are centred
    exactly. ``w`` must hold integer counts with equal row sums (as :func:`resample_counts` gives).
    """
    w = np.asarray(w)
    if w.dtype.kind == "f":
        w = w.astype(np.int32)
    ox = np.argsort(x, kind="stable")
    oy = np.argsort(y, kind="stable")
    wx = np.take(w, ox, axis=1)
    rx = _doubled_centred_ranks(x[ox], wx)
    ry = _doubled_centred_ranks(y[oy], np.take(w, oy, axis=1))
    inverse_y = np.empty_like(oy)
    inverse_y[oy] = np.arange(oy.size)
    ry = np.take(ry, inverse_y[ox], axis=1)  # y-ranks in x-sorted item order
    weighted_rx = (wx * rx).astype(np.float64)
    sxy = np.einsum("ij,ij->i", weighted_rx, ry.astype(np.float64))
    sxx = np.einsum("ij,ij->i", weighted_rx, rx.astype(np.float64))
    syy = np.einsum("ij,ij->i", (wx * ry).astype(np.float64), ry.astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = sxy / np.sqrt(sxx * syy)
    r[(sxx <= 0) | (syy <= 0)] = np.nan
    return np.clip(r, -1.0, 1.0)


def weighted_pearson_rows(fx: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Pearson's r of row r of ``fx`` (R, n) with ``y`` under the counts of row r of ``w``; NaN if constant.

    For PLCC after a mapping fitted to each resample (``fx`` = the fitted values of each resample).
    """
    w = np.asarray(w, dtype=np.float64)
    total = w.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        xc = fx - (w * fx).sum(axis=1, keepdims=True) / total
        yc = y[None, :] - (w @ y)[:, None] / total
        sxx = np.einsum("rn,rn->r", w * xc, xc)
        syy = np.einsum("rn,rn->r", w * yc, yc)
        r = np.einsum("rn,rn->r", w * xc, yc) / np.sqrt(sxx * syy)
        degenerate = (sxx <= 1e-14 * np.einsum("rn,rn->r", w, fx * fx)) | (syy <= 0)
    r[degenerate] = np.nan
    return np.clip(r, -1.0, 1.0)


KENDALL_MATRIX_MAX_ITEMS = 3000


def _tied_pairs(values: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Pairs of draws tied in ``values`` per resample: sum over tie groups of c (c - 1) / 2."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    groups = np.add.reduceat(np.take(w, order, axis=1), starts, axis=1)
    return 0.5 * np.einsum("rg,rg->r", groups, groups - 1.0)


def weighted_kendall(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Kendall's tau-b of (x, y) in each resample given by the count rows of ``w`` (R, n).

    tau_b = (C - D) / sqrt((n0 - n1)(n0 - n2)) on the expanded resample (Kendall 1945):
    C - D = w' S w / 2 with S_ij = sign(x_i - x_j) sign(y_i - y_j) (a repeated item ties with itself),
    n0 = N(N - 1)/2 for N draws, n1 and n2 the pairs of draws tied in x and in y. One (R, n) x (n, n)
    product gives all resamples; above ``KENDALL_MATRIX_MAX_ITEMS`` items S would be too large and the
    resamples are expanded one by one (scipy's O(n log n) tau-b). NaN where x or y is constant.
    """
    w = np.asarray(w, dtype=np.float64)
    if x.size > KENDALL_MATRIX_MAX_ITEMS:
        out = np.empty(w.shape[0])
        for r in range(w.shape[0]):
            i = expand(w[r].astype(np.int64))
            with np.errstate(invalid="ignore", divide="ignore"):
                out[r] = scipy.stats.kendalltau(x[i], y[i], variant="b").statistic
        return out
    signs = np.sign(x[:, None] - x[None, :]) * np.sign(y[:, None] - y[None, :])
    difference = 0.5 * np.einsum("rn,rn->r", w @ signs, w)
    total = w.sum(axis=1)
    n0 = 0.5 * total * (total - 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = difference / np.sqrt((n0 - _tied_pairs(x, w)) * (n0 - _tied_pairs(y, w)))
    return np.clip(tau, -1.0, 1.0)


def expand(w_row: np.ndarray) -> np.ndarray:
    """Item indices of one resample from its count vector (for statistics without a vectorised form)."""
    return np.repeat(np.arange(w_row.size), w_row)


def percentile_interval(
    estimate: float, replicates: np.ndarray, confidence: float = 0.95
) -> ConfidenceInterval:
    """Percentile interval of bootstrap ``replicates`` (NaN replicates, e.g. constant resamples, dropped)."""
    if not 0 < confidence < 1:
        raise InputError(f"confidence must lie in (0, 1), got {confidence}")
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        nan = float("nan")
        return ConfidenceInterval(estimate, nan, nan, confidence, int(replicates.size), nan)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(finite, [alpha, 1.0 - alpha])
    std = float(np.std(finite, ddof=1)) if finite.size > 1 else float("nan")
    return ConfidenceInterval(float(estimate), float(low), float(high), confidence, int(replicates.size), std)


def paired_difference(
    statistic: str,
    estimate_a: float,
    estimate_b: float,
    replicates_a: np.ndarray,
    replicates_b: np.ndarray,
    confidence: float = 0.95,
) -> PairedDifference:
    """Paired bootstrap test of A - B from replicates computed on the *same* resamples.

    The two-sided p-value is ``2 min(P*(d <= 0), P*(d >= 0))`` over the bootstrap distribution of the
    difference d (clipped to 1), the usual percentile-bootstrap test of H0: no difference.
    """
    diff = np.asarray(replicates_a) - np.asarray(replicates_b)
    ci = percentile_interval(estimate_a - estimate_b, diff, confidence)
    finite = diff[np.isfinite(diff)]
    if finite.size == 0:
        p = float("nan")
    else:
        p = float(min(1.0, 2.0 * min(np.mean(finite <= 0), np.mean(finite >= 0))))
    return PairedDifference(statistic, float(estimate_a), float(estimate_b), ci, p, "paired bootstrap")


def williams_test(r_a: float, r_b: float, r_ab: float, n: int) -> tuple[float, float]:
    """Williams' t test of two dependent correlations sharing one variable (Steiger 1980, eq. 7).

    ``r_a`` = corr(A, MOS), ``r_b`` = corr(B, MOS), ``r_ab`` = corr(A, B) on the same n items.
    t = (r_a - r_b) sqrt((n - 1)(1 + r_ab) / (2 (n - 1)/(n - 3) |R| + rbar^2 (1 - r_ab)^3)) with
    |R| = 1 - r_a^2 - r_b^2 - r_ab^2 + 2 r_a r_b r_ab and rbar = (r_a + r_b) / 2, df = n - 3.
    Returns (t, two-sided p).
    """
    if n <= 3:
        raise InputError(f"Williams' test needs more than 3 items, got {n}")
    det = 1.0 - r_a**2 - r_b**2 - r_ab**2 + 2.0 * r_a * r_b * r_ab
    rbar = (r_a + r_b) / 2.0
    denom = 2.0 * (n - 1) / (n - 3) * det + rbar**2 * (1.0 - r_ab) ** 3
    if denom <= 0:
        return float("nan"), float("nan")
    t = (r_a - r_b) * np.sqrt((n - 1) * (1.0 + r_ab) / denom)
    p = 2.0 * scipy.stats.t.sf(abs(t), df=n - 3)
    return float(t), float(p)
