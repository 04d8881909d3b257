"""Newton solver for the paired-comparison log-likelihood on the zero-mean subspace.

For compared pairs ``a_k < b_k`` with ``wab_k`` votes for ``a_k``, ``wba_k`` for ``b_k`` and
``d_k = mu_a - mu_b``, the penalised objective is
``sum_k wab_k log F(d_k) + wba_k log F(-d_k) - ridge * ||mu||^2``; ``F`` is ``Phi`` (Thurstone Case V, paper
Chen et al., Learning from Model Rankings, 2025, eq. 2) or the logistic function (Bradley-Terry). The
negative Hessian of the likelihood is the graph
Laplacian with edge weights ``wab_k w(d_k) + wba_k w(-d_k)``, ``w = -(log F)''``.

Iterations start from Berkson's minimum chi-square estimate (weighted least squares of ``F^-1`` of the
smoothed vote shares on ``mu_a - mu_b``). Newton steps solve ``(H + 2 ridge I) step = grad`` on the subspace
``sum mu = 0`` (``n - 1`` free parameters): small problems add ``11'/n`` to make the matrix invertible and
solve a batch of dense systems at once; large ones solve the sparse (Laplacian) system by
Jacobi-preconditioned conjugate gradients on the zero-mean subspace.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import special
from scipy.sparse import csr_array

from perceptiq.errors import FitError
from perceptiq.ranking._graph import sorted_csr

_HALF_LOG_2PI = 0.5 * np.log(2.0 * np.pi)
_SQRT_HALF = np.sqrt(0.5)
_DENSE_MAX_ITEMS = 128  # above this many items, Newton steps use sparse conjugate gradients
_XTOL = 1e-5  # converged after a full Newton step this small (quadratic convergence: error ~ step^2)
_SCORE_ATOL = 1e-7  # or once the estimated error left in the scores is this small (far below any SE)
_MAX_ITER = 100
_ARMIJO = 1e-4
_CG_RTOL = 1e-12
_START_RTOL = 1e-4  # CG accuracy for the start and the first Newton steps


_Derivatives = Callable[
    [np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]
]


@dataclass(frozen=True)
class Link:
    """``log F``; ``log_cdf_both(d) = (log F(d), log F(-d))``;
    ``derivatives(d, log F(d), log F(-d), wab, wba) = (wab g(d) - wba g(-d), wab w(d) + wba w(-d))``, the
    per-pair gradient and Laplacian edge weights, with ``g = (log F)'`` and ``w = -(log F)''``; ``F^-1``;
    ``start_weight(p) = F'(F^-1(p))^2 / (p (1 - p))``, the inverse delta-method variance of ``F^-1`` of a
    vote share ``p`` per vote."""

    log_cdf: Callable[[np.ndarray], np.ndarray]
    log_cdf_both: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    derivatives: _Derivatives
    inverse_cdf: Callable[[np.ndarray], np.ndarray]
    start_weight: Callable[[np.ndarray], np.ndarray]


# The link functions are elementwise NumPy / scipy.special ufuncs on the pair vectors, in float64.


def _probit_derivatives(
    d: np.ndarray, log_pos: np.ndarray, log_neg: np.ndarray, wab: np.ndarray, wba: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    log_pdf = -0.5 * d * d - _HALF_LOG_2PI
    mills_pos = np.exp(log_pdf - log_pos)  # phi / Phi in log space
    mills_neg = np.exp(log_pdf - log_neg)
    slope = wab * mills_pos - wba * mills_neg
    weight = wab * mills_pos * (d + mills_pos) + wba * mills_neg * (mills_neg - d)
    return slope, weight


def _logit_derivatives(
    d: np.ndarray, log_pos: np.ndarray, log_neg: np.ndarray, wab: np.ndarray, wba: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    win, lose = special.expit(d), special.expit(-d)  # sigma(d), sigma(-d) = (log sigma)'(d)
    return wab * lose - wba * win, (wab + wba) * (win * lose)


def _normal_log_cdf_both(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(log Phi(d), log Phi(-d))``: the tail ``Phi(-|d|)`` by ``erfc`` (``log_ndtr`` beyond 30 sd, where
    it would underflow), the other side by ``log1p(-tail)``; accurate on both sides and cheaper than two
    ``log_ndtr`` calls."""
    a = np.abs(d)
    tail = 0.5 * special.erfc(a * _SQRT_HALF)
    far = a > 30.0
    with np.errstate(divide="ignore"):
        small = np.log(tail)
    if far.any():
        small[far] = special.log_ndtr(-a[far])
    large = np.log1p(-tail)
    positive = d >= 0
    return np.where(positive, large, small), np.where(positive, small, large)


def _logistic_log_cdf_both(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(log sigma(d), log sigma(-d))`` from one shared ``log1p(exp(-|d|))``, exact on both sides."""
    shared = np.log1p(np.exp(-np.abs(d)))
    return -(shared + np.maximum(-d, 0.0)), -(shared + np.maximum(d, 0.0))


def _normal_start_weight(p: np.ndarray) -> np.ndarray:
    y = special.ndtri(p)
    return np.exp(-y * y - 2.0 * _HALF_LOG_2PI) / (p * (1.0 - p))


def _logit(p: np.ndarray) -> np.ndarray:
    return special.logit(p)


def _logistic_start_weight(p: np.ndarray) -> np.ndarray:
    return p * (1.0 - p)  # sigma'(logit p) = p (1 - p)


LINKS: dict[str, Link] = {
    "thurstone": Link(
        special.log_ndtr, _normal_log_cdf_both, _probit_derivatives, special.ndtri, _normal_start_weight
    ),
    "bt": Link(special.log_expit, _logistic_log_cdf_both, _logit_derivatives, _logit, _logistic_start_weight),
}


def _scatter(values: np.ndarray, index: np.ndarray, size: int) -> np.ndarray:
    """Sum ``values`` (batch, k) into (batch, size) bins given by ``index`` (k,)."""
    batch = values.shape[0]
    flat = (np.arange(batch)[:, None] * size + index[None, :]).ravel()
    return np.bincount(flat, weights=values.ravel(), minlength=batch * size).reshape(batch, size)


@dataclass(frozen=True)
class Design:
    """Compared pairs ``a[k] < b[k]`` among ``n`` items, sorted by ``(a, b)``; ``adjacency`` is the sparse
    symmetric pattern for large ``n`` (``pair_of_entry`` maps its stored entries to pairs)."""

    a: np.ndarray
    b: np.ndarray
    n: int
    ends: np.ndarray = field(init=False)
    adjacency: csr_array | None = field(init=False, default=None)
    pair_of_entry: np.ndarray | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ends", np.concatenate([self.a, self.b]))
        if self.n > _DENSE_MAX_ITEMS:  # symmetric pattern = upper triangle + its transpose, data = pair + 1
            n = self.n
            if np.any(np.diff(self.a * n + self.b) <= 0):
                raise ValueError("Design pairs must be sorted and unique")
            upper = sorted_csr(np.arange(1.0, self.a.size + 1.0), self.a, self.b, n)
            adjacency = upper + upper.T.tocsr()
            object.__setattr__(self, "adjacency", adjacency)
            object.__setattr__(self, "pair_of_entry", adjacency.data.astype(np.int64) - 1)

    def scatter(self, per_pair: np.ndarray) -> np.ndarray:
        """``sum_k per_pair_k (e_a - e_b)`` per batch row: (batch, pairs) -> (batch, n)."""
        if per_pair.shape[0] == 1:
            row = per_pair[0]
            out = np.bincount(self.a, weights=row, minlength=self.n)
            return (out - np.bincount(self.b, weights=row, minlength=self.n))[None]
        return _scatter(np.concatenate([per_pair, -per_pair], axis=1), self.ends, self.n)

    def information(self, weights: np.ndarray, ridge: float) -> np.ndarray:
        """Dense ``M = H + 2 ridge I + 11'/n`` (batch, n, n), ``H`` the Laplacian of the edge weights."""
        a, b, n = self.a, self.b, self.n
        cells = np.concatenate([a * n + a, b * n + b, a * n + b, b * n + a])
        info = _scatter(np.concatenate([weights, weights, -weights, -weights], axis=1), cells, n * n)
        info = info.reshape(-1, n, n)
        info += (2.0 * ridge) * np.eye(n) + 1.0 / n
        return info

    def _cg_solve(self, rhs: np.ndarray, weights: np.ndarray, ridge: float, rtol: float) -> np.ndarray:
        """``(H + 2 ridge I)^-1 rhs`` for a zero-mean ``rhs`` by Jacobi-preconditioned conjugate gradients.

        Without a ridge ``H`` is a connected graph's Laplacian, singular along ``1`` only; a zero-mean ``rhs``
        lies in its range, so CG converges to the zero-mean solution (the preconditioned system's null
        direction stays orthogonal to every residual). Plain loop: scipy's ``cg`` wrapper costs more than the
        sparse products of these small systems.
        """
        adjacency = self.adjacency
        adjacency.data = weights[self.pair_of_entry]
        diag = adjacency @ np.ones(self.n) + 2.0 * ridge
        inv_diag = 1.0 / np.where(diag > 0, diag, 1.0)
        rhs = rhs - rhs.mean()
        stop = rtol * np.linalg.norm(rhs)
        x, r = np.zeros(self.n), rhs.copy()
        z = inv_diag * r
        p, rz = z.copy(), r @ z
        for _ in range(20 * self.n):
            if np.linalg.norm(r) <= stop:
                return x - x.mean()
            q = diag * p - adjacency @ p
            alpha = rz / (p @ q)
            x += alpha * p
            r -= alpha * q
            z = inv_diag * r
            rz, rz_old = r @ z, rz
            p = z + (rz / rz_old) * p
        return np.linalg.solve(self.information(weights[None], ridge)[0], rhs)

    def solve(self, rhs: np.ndarray, weights: np.ndarray, ridge: float, rtol: float = _CG_RTOL) -> np.ndarray:
        """``M^-1 rhs`` per batch row: dense, or for large ``n`` sparse CG to relative residual ``rtol``.

        The result is zero-mean when ``rhs`` is.
        """
        if self.adjacency is None:
            return np.linalg.solve(self.information(weights, ridge), rhs[..., None])[..., 0]
        return np.stack([self._cg_solve(r, w, ridge, rtol) for r, w in zip(rhs, weights, strict=True)])


@dataclass(frozen=True)
class _Point:
    """Scores (batch, n), pair differences and ``log F(+-d)`` (batch, pairs), penalised objective (batch,)."""

    mu: np.ndarray
    d: np.ndarray
    log_pos: np.ndarray
    log_neg: np.ndarray
    value: np.ndarray


def _evaluate(
    mu: np.ndarray, design: Design, wab: np.ndarray, wba: np.ndarray, link: Link, ridge: float
) -> _Point:
    d = mu[:, design.a] - mu[:, design.b]
    log_pos, log_neg = link.log_cdf_both(d)
    value = np.einsum("bk,bk->b", wab, log_pos) + np.einsum("bk,bk->b", wba, log_neg)
    if ridge:
        value -= ridge * np.einsum("bi,bi->b", mu, mu)
    return _Point(mu, d, log_pos, log_neg, value)


def _derivatives(
    point: _Point, design: Design, wab: np.ndarray, wba: np.ndarray, link: Link, ridge: float
) -> tuple[np.ndarray, np.ndarray]:
    """Gradient (batch, n) of the penalised objective and the Laplacian edge weights (batch, pairs)."""
    slope, weights = link.derivatives(point.d, point.log_pos, point.log_neg, wab, wba)
    grad = design.scatter(slope)
    if ridge:
        grad -= 2.0 * ridge * point.mu
    return grad, weights


def _initial(design: Design, wab: np.ndarray, wba: np.ndarray, link: Link, ridge: float) -> np.ndarray:
    """Berkson's minimum chi-square start: weighted least squares of ``F^-1(share)`` on ``mu_a - mu_b``."""
    total = wab + wba
    share = (wab + 0.5) / (total + 1.0)
    y = link.inverse_cdf(share)
    weights = total * link.start_weight(share)
    return design.solve(design.scatter(weights * y), weights, ridge, rtol=_START_RTOL)


def maximise(
    design: Design, wab: np.ndarray, wba: np.ndarray, link: Link, ridge: float, mu0: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    """Maximise the penalised likelihood for a batch of count vectors ``wab``, ``wba`` (batch, pairs).

    Newton with a backtracking (Armijo) line search; the objective is concave, so it converges to the global
    maximum whenever one exists. Returns zero-mean scores (batch, n) and the number of iterations.
    """
    batch = wab.shape[0]
    if mu0 is None:
        mu = _initial(design, wab, wba, link, ridge)
    else:
        mu = np.broadcast_to(mu0 - mu0.mean(), (batch, design.n)).copy()
    point = _evaluate(mu, design, wab, wba, link, ridge)
    rtol, previous = _START_RTOL, np.inf
    for it in range(1, _MAX_ITER + 1):
        grad, weights = _derivatives(point, design, wab, wba, link, ridge)
        step = design.solve(grad, weights, ridge, rtol)
        slope = np.sum(grad * step, axis=1)
        slack = 1e-12 * (1.0 + np.abs(point.value))  # rounding in the objective
        t = np.ones(batch)
        for _ in range(60):
            cand = point.mu + t[:, None] * step
            cand -= cand.mean(axis=1, keepdims=True)  # rounding drifts off sum 0
            trial = _evaluate(cand, design, wab, wba, link, ridge)
            ok = trial.value >= point.value + _ARMIJO * t * slope - slack
            if ok.all():
                break
            t = np.where(ok, t, 0.5 * t)
        point = trial
        size = np.max(np.abs(step))
        if np.all(t == 1.0):
            # Quadratic convergence: the next step (the error left) ~ C size^2 with C ~ size / previous^2,
            # plus the inexact solve's share rtol * size.
            left = size**3 / previous**2 + rtol * size
            if size < _XTOL or (size < 0.1 * previous and left < _SCORE_ATOL):
                return point.mu, it
        rtol = min(_START_RTOL, max(_CG_RTOL, size * size))  # inexact Newton, forcing term ~ error
        previous = size if np.all(t == 1.0) else np.inf
    raise FitError(f"Newton's method did not converge in {_MAX_ITER} iterations")


def covariance(
    mu: np.ndarray, design: Design, wab: np.ndarray, wba: np.ndarray, link: Link, ridge: float
) -> np.ndarray:
    """Inverse observed information on the zero-mean subspace: ``M^-1 - 11' / (n (1 + 2 ridge))``.

    ``M`` maps ``1`` to ``(1 + 2 ridge) 1`` and acts as ``H + 2 ridge I`` on its orthogonal complement, so
    removing the ``1`` direction leaves the (pseudo-)inverse of the information of the constrained problem.
    """
    point = _evaluate(mu[None], design, wab[None], wba[None], link, ridge)
    _, weights = _derivatives(point, design, wab[None], wba[None], link, ridge)
    return np.linalg.inv(design.information(weights, ridge)[0]) - 1.0 / (design.n * (1.0 + 2.0 * ridge))
