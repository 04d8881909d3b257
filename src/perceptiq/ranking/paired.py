"""Maximum-likelihood scores from paired comparisons: Thurstone Case V and Bradley-Terry.

Conventions (Chen et al., Learning from Model Rankings, 2025, eq. 2; the released code has no
Thurstone fit): ``C[i, j]`` = number of votes for item ``i`` over item ``j`` (the diagonal is ignored). ``P(i
preferred to j) = F(mu_i - mu_j)`` with ``F = Phi`` for Thurstone Case V
(unit variance of the *difference*; multiply the scores by sqrt(2) for unit per-item variance) or
``F = logistic`` for Bradley-Terry (``mu`` = log-strength). The scores maximise

    L(mu) = sum_{i != j} C_ij log F(mu_i - mu_j) - ridge * ||mu||^2    subject to    sum_i mu_i = 0,

higher is better. The solver is Newton's method with a backtracking line search on the zero-mean subspace
(``n - 1`` free parameters), with the analytic gradient and Hessian (log-space ``Phi`` via ``log_ndtr``). The
objective is concave, so the maximum is global; without a ridge it exists iff the wins graph is strongly
connected (see :mod:`perceptiq.ranking._graph`). Standard errors come from the inverse observed information of
the constrained problem; bootstrap intervals resample the votes (multinomial on the count matrix).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import special
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components

from perceptiq.errors import FitError, InputError
from perceptiq.ranking._graph import check_wins_edges, describe_separation
from perceptiq.ranking._solver import LINKS, Design, Link, covariance, maximise

__all__ = [
    "Model",
    "PairedComparisonResult",
    "bootstrap_scores",
    "bradley_terry",
    "counts_from_pairs",
    "counts_from_records",
    "fit_paired",
    "log_likelihood",
    "paired_mle",
    "thurstone",
]

Model = Literal["thurstone", "bt"]
_BATCH_CELLS = 2_000_000  # bootstrap batch size x n^2 dense-Hessian entries kept in memory at once
_BATCH_REACH_ITEMS = 32  # up to this many items, strong connectivity of a batch by matrix squaring


@dataclass(frozen=True, eq=False)
class PairedComparisonResult:
    """Scores of a paired-comparison model (zero mean, higher is better) with uncertainty.

    ``se`` always comes from the inverse observed information (of the penalised objective when ``ridge > 0``);
    ``ci_low``/``ci_high`` are Wald intervals ``score +- z * se`` or bootstrap percentile intervals
    (``ci_method``). ``log_likelihood`` is the unpenalised ``L`` at the scores.
    """

    model: str
    items: tuple[str, ...]
    scores: np.ndarray
    se: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    ci_method: str
    level: float
    log_likelihood: float
    ridge: float
    ridge_needed: bool
    ridge_reason: str
    n_votes: int
    n_iter: int
    n_boot: int = 0
    n_boot_failed: int = 0

    @property
    def ranking(self) -> np.ndarray:
        """Item indices, best first (stable for ties)."""
        return np.argsort(-self.scores, kind="stable")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary; ``ranking`` lists items best first with score, se and interval."""
        rows = [
            {
                "rank": r + 1,
                "item": self.items[i],
                "score": float(self.scores[i]),
                "se": float(self.se[i]),
                "ci_low": float(self.ci_low[i]),
                "ci_high": float(self.ci_high[i]),
            }
            for r, i in enumerate(self.ranking)
        ]
        return {
            "model": self.model,
            "n_items": len(self.items),
            "n_votes": self.n_votes,
            "log_likelihood": self.log_likelihood,
            "ridge": self.ridge,
            "ridge_needed": self.ridge_needed,
            "ridge_reason": self.ridge_reason,
            "ci_method": self.ci_method,
            "level": self.level,
            "n_boot": self.n_boot,
            "n_boot_failed": self.n_boot_failed,
            "n_iter": self.n_iter,
            "ranking": rows,
        }


def _link(model: str) -> Link:
    if model not in LINKS:
        raise InputError(f"unknown paired-comparison model {model!r}; expected one of {sorted(LINKS)}")
    return LINKS[model]


def _as_index(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size and (not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0):
        raise InputError(f"{name} must hold non-negative integer item indices")
    return arr.astype(np.int64)


def _n_items(n_items: int | None, *indices: np.ndarray) -> int:
    top = max((int(ix.max()) + 1 for ix in indices if ix.size), default=0)
    if n_items is None:
        return top
    if top > n_items:
        raise InputError(f"item index {top - 1} out of range for n_items={n_items}")
    return int(n_items)


def counts_from_records(
    first: Sequence[int] | np.ndarray,
    second: Sequence[int] | np.ndarray,
    winner: Sequence[int] | np.ndarray,
    n_items: int | None = None,
) -> np.ndarray:
    """Count matrix ``C[i, j]`` (votes for ``i`` over ``j``) from one ``(first, second, winner)`` per vote.

    ``winner`` holds the index of the preferred item and must equal ``first`` or ``second`` in every row.

    Example:
        >>> counts_from_records([0, 0, 1], [1, 1, 2], [0, 1, 2])
        array([[0, 1, 0],
               [1, 0, 0],
               [0, 1, 0]])
    """
    a, b, w = (_as_index(v, n) for v, n in ((first, "first"), (second, "second"), (winner, "winner")))
    if not a.shape == b.shape == w.shape:
        raise InputError(f"first, second and winner differ in length: {a.size}, {b.size}, {w.size}")
    for bad, problem in (
        (a == b, "compares an item with itself"),
        ((w != a) & (w != b), "winner not in pair"),
    ):
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(f"vote {row} ({a[row]}, {b[row]}, winner {w[row]}): {problem}")
    n = _n_items(n_items, a, b)
    loser = np.where(w == a, b, a)
    return np.bincount(w * n + loser, minlength=n * n).reshape(n, n)


def counts_from_pairs(
    first: Sequence[int] | np.ndarray,
    second: Sequence[int] | np.ndarray,
    count_first: Sequence[int] | np.ndarray,
    count_second: Sequence[int] | np.ndarray,
    n_items: int | None = None,
) -> np.ndarray:
    """Count matrix from aggregated rows: ``count_first`` votes for ``first``, ``count_second`` the other way.

    Rows for the same pair (in either order) are summed.
    """
    a, b = _as_index(first, "first"), _as_index(second, "second")
    ca, cb = np.asarray(count_first, dtype=float), np.asarray(count_second, dtype=float)
    if not a.shape == b.shape == ca.shape == cb.shape:
        raise InputError("first, second, count_first and count_second differ in length")
    for name, c in (("count_first", ca), ("count_second", cb)):
        bad = ~np.isfinite(c) | (c < 0) | (c != np.round(c))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(f"{name}[{row}] = {c[row]!r} is not a non-negative integer vote count")
    if (a == b).any():
        raise InputError(f"row {int(np.flatnonzero(a == b)[0])} compares an item with itself")
    n = _n_items(n_items, a, b)
    counts = np.bincount(a * n + b, weights=ca, minlength=n * n) + np.bincount(
        b * n + a, weights=cb, minlength=n * n
    )
    return np.rint(counts).astype(np.int64).reshape(n, n)


def _check_counts(counts: Any) -> np.ndarray:
    """The count matrix as an integer or float array with a zero diagonal (copied only to zero it)."""
    c = np.asarray(counts)
    if c.dtype == bool or not (np.issubdtype(c.dtype, np.integer) or np.issubdtype(c.dtype, np.floating)):
        raise InputError(f"counts must be a matrix of integer or real vote counts, got dtype {c.dtype}")
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.shape[0] < 2:
        raise InputError(f"counts must be a square matrix of at least 2 items, got shape {c.shape}")
    if (np.issubdtype(c.dtype, np.floating) and not np.isfinite(c).all()) or c.min() < 0:
        raise InputError("counts must be finite and non-negative")
    if np.diagonal(c).any():
        c = c.copy()
        np.fill_diagonal(c, 0)
    return c


def _check_ridge(ridge: float) -> float:
    if not (np.isfinite(ridge) and ridge >= 0):
        raise InputError(f"ridge must be a finite non-negative number, got {ridge!r}")
    return float(ridge)


def log_likelihood(scores: Sequence[float] | np.ndarray, counts: Any, model: Model = "thurstone") -> float:
    """``L(mu) = sum_{i != j} C_ij log F(mu_i - mu_j)`` (Chen et al., Learning from Model Rankings, 2025, eq.
    2), without any prior term."""
    c = _check_counts(counts)
    mu = np.asarray(scores, dtype=float)
    i, j = np.nonzero(c)
    return float(np.sum(c[i, j] * _link(model).log_cdf(mu[i] - mu[j])))


def _pairs(counts: np.ndarray) -> tuple[Design, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Compared pairs ``a < b``, counts ``C[a, b]``, ``C[b, a]`` and the nonzero cells (winners, losers)."""
    n = counts.shape[0]
    winners, losers = np.divmod(np.flatnonzero(counts != 0), n)  # faster than np.nonzero on the counts
    compared = np.zeros(n * n, dtype=bool)  # marking the cells (a, b) beats sorting and deduplicating
    compared[np.minimum(winners, losers) * n + np.maximum(winners, losers)] = True
    keys = np.flatnonzero(compared)
    a, b = np.divmod(keys, n)
    flat = counts.ravel()
    return Design(a, b, n), flat[keys].astype(float), flat[b * n + a].astype(float), winners, losers


def _checked_pairs(
    counts: np.ndarray, items: Sequence[str], ridge: float
) -> tuple[Design, np.ndarray, np.ndarray, str | None]:
    """Pairs and counts after the connectivity checks; the last item describes a separation (or None)."""
    design, wab, wba, winners, losers = _pairs(counts)
    strong = check_wins_edges(winners, losers, items, require_strong=ridge == 0)
    return design, wab, wba, None if strong else describe_separation(winners, losers, items)[1]


def paired_mle(counts: Any, model: Model = "thurstone", *, ridge: float = 0.0) -> np.ndarray:
    """Zero-mean maximum-likelihood (MAP with ``ridge > 0``) scores only, without uncertainty.

    Same estimate as :func:`fit_paired` (which adds standard errors, intervals and diagnostics) and the same
    connectivity checks.
    """
    c, link, ridge = _check_counts(counts), _link(model), _check_ridge(ridge)
    design, wab, wba, _ = _checked_pairs(c, [str(i) for i in range(c.shape[0])], ridge)
    return maximise(design, wab[None], wba[None], link, ridge)[0][0]


def _strongly_connected_rows(design: Design, wab: np.ndarray, wba: np.ndarray) -> np.ndarray:
    """Per batch row of counts (batch, pairs): is the wins graph strongly connected?

    Small designs square the reachability matrices of the whole batch at once; large ones use csgraph.
    """
    a, b, n = design.a, design.b, design.n
    if n > _BATCH_REACH_ITEMS:
        out = []
        for fwd, bwd in zip(wab > 0, wba > 0, strict=True):
            winners, losers = np.r_[a[fwd], b[bwd]], np.r_[b[fwd], a[bwd]]
            graph = coo_array((np.ones(winners.size), (winners, losers)), shape=(n, n)).tocsr()
            out.append(connected_components(graph, directed=True, connection="strong")[0] == 1)
        return np.array(out, dtype=bool)
    reach = np.zeros((wab.shape[0], n, n), dtype=np.float32)
    reach[:, a, b] = wab > 0
    reach[:, b, a] = wba > 0
    reach[:, np.arange(n), np.arange(n)] = 1.0
    for _ in range(max(1, int(np.ceil(np.log2(n - 1))))):  # paths of length up to 2^k after k squarings
        reach = np.minimum(reach @ reach, 1.0)
    return reach.min(axis=(1, 2)) > 0


def bootstrap_scores(
    counts: Any,
    model: Model = "thurstone",
    *,
    ridge: float = 0.0,
    n_boot: int = 1000,
    seed: int | np.random.Generator | None = 0,
    start: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """Scores refitted on ``n_boot`` resamples of the votes (multinomial on the count matrix).

    Returns ``(scores, n_failed)`` with ``scores`` of shape ``(n_boot - n_failed, n)``; a resample fails when,
    without a ridge, its wins graph is not strongly connected (its MLE does not exist).
    """
    c, ridge = _check_counts(counts), _check_ridge(ridge)
    if not np.array_equal(c, np.round(c)):
        raise InputError("bootstrap over votes needs integer vote counts")
    if n_boot < 1:
        raise InputError(f"n_boot must be positive, got {n_boot}")
    link, n, rng = _link(model), c.shape[0], np.random.default_rng(seed)
    design, _, _, rows, cols = _pairs(c)
    check_wins_edges(rows, cols, [str(i) for i in range(n)], require_strong=ridge == 0)
    a, b = design.a, design.b
    forward = rows < cols
    pair = np.searchsorted(a * n + b, np.minimum(rows, cols) * n + np.maximum(rows, cols))
    total = int(c.sum())
    chunk = max(1, min(n_boot, _BATCH_CELLS // (n * n)))
    kept, failed = [], 0
    for start_at in range(0, n_boot, chunk):
        draws = rng.multinomial(total, c[rows, cols] / total, size=min(chunk, n_boot - start_at))
        wab = np.zeros((len(draws), a.size))
        wba = np.zeros((len(draws), a.size))
        wab[:, pair[forward]] = draws[:, forward]
        wba[:, pair[~forward]] = draws[:, ~forward]
        if ridge == 0:
            ok = _strongly_connected_rows(design, wab, wba)
            failed += int((~ok).sum())
            wab, wba = wab[ok], wba[ok]
        if len(wab):
            kept.append(maximise(design, wab, wba, link, ridge, start)[0])
    if not kept:
        raise FitError(f"all {n_boot} bootstrap resamples lost strong connectivity; use a ridge prior > 0")
    return np.concatenate(kept), failed


def fit_paired(
    counts: Any,
    model: Model = "thurstone",
    *,
    ridge: float = 0.0,
    items: Sequence[str] | None = None,
    ci: Literal["wald", "bootstrap"] = "wald",
    level: float = 0.95,
    n_boot: int = 1000,
    seed: int | np.random.Generator | None = 0,
) -> PairedComparisonResult:
    """Maximum-likelihood (or, with ``ridge > 0``, MAP) scores of Thurstone Case V or Bradley-Terry.

    ``counts[i, j]`` = votes for ``i`` over ``j``. ``ridge`` is the weight of ``-ridge * ||mu||^2`` (a
    Gaussian prior of variance ``1 / (2 ridge)``). Raises
    :class:`~perceptiq.ranking.DisconnectedComparisonsError` naming the components when the comparison graph
    is disconnected, or when ``ridge == 0`` and the wins graph is not strongly connected (perfect separation).

    Example (three items):
        >>> result = fit_paired([[0, 8, 9], [2, 0, 7], [1, 3, 0]], items=["a", "b", "c"])
        >>> result.scores.round(4)
        array([ 0.7116, -0.1045, -0.6071])
        >>> [result.items[i] for i in result.ranking], round(result.log_likelihood, 4)
        (['a', 'b', 'c'], -14.3688)
    """
    c = _check_counts(counts)
    n = c.shape[0]
    names = tuple(str(i) for i in range(n)) if items is None else tuple(str(x) for x in items)
    if len(names) != n or len(set(names)) != n:
        raise InputError(f"items must be {n} distinct names, got {len(names)} ({len(set(names))} distinct)")
    ridge = _check_ridge(ridge)
    if not 0 < level < 1:
        raise InputError(f"level must lie in (0, 1), got {level!r}")
    if ci not in ("wald", "bootstrap"):
        raise InputError(f"unknown interval method {ci!r}; expected 'wald' or 'bootstrap'")
    link = _link(model)
    design, wab, wba, separation = _checked_pairs(c, names, ridge)
    mu, n_iter = maximise(design, wab[None], wba[None], link, ridge)
    mu = mu[0]
    se = np.sqrt(np.clip(np.diag(covariance(mu, design, wab, wba, link, ridge)), 0.0, None))
    n_failed = 0
    if ci == "wald":
        z = special.ndtri(0.5 + level / 2)
        low, high = mu - z * se, mu + z * se
    else:
        boot, n_failed = bootstrap_scores(c, model, ridge=ridge, n_boot=n_boot, seed=seed, start=mu)
        low, high = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2], axis=0)
    for arr in (mu, se, low, high):
        arr.setflags(write=False)
    return PairedComparisonResult(
        model=model,
        items=names,
        scores=mu,
        se=se,
        ci_low=low,
        ci_high=high,
        ci_method=ci,
        level=float(level),
        log_likelihood=log_likelihood(mu, c, model),
        ridge=float(ridge),
        ridge_needed=separation is not None,
        ridge_reason=(
            "not needed: the wins graph is strongly connected, so the MLE exists without a prior"
            if separation is None
            else f"needed: the wins graph is not strongly connected ({separation}); without a prior those "
            "scores diverge"
        ),
        n_votes=int(round(c.sum())),
        n_iter=n_iter,
        n_boot=n_boot if ci == "bootstrap" else 0,
        n_boot_failed=n_failed,
    )


def thurstone(counts: Any, **kwargs: Any) -> PairedComparisonResult:
    """Thurstone Case V scores (Chen et al., Learning from Model Rankings, 2025, eq. 2): :func:`fit_paired`
    with ``model="thurstone"``."""
    return fit_paired(counts, "thurstone", **kwargs)


def bradley_terry(counts: Any, **kwargs: Any) -> PairedComparisonResult:
    """Bradley-Terry log-strengths: :func:`fit_paired` with ``model="bt"``."""
    return fit_paired(counts, "bt", **kwargs)
