"""Newton solver for the paired-comparison log-likelihood on the zero-mean subspace.

For compared pairs ``a_k < b_k`` with ``wab_k`` votes for ``a_k``, ``wba_k`` for ``b_k`` and
``d_k = mu_a - mu_b``, the penalised objective is
``sum_k wab_k log F(d_k) + wba_k log F(-d_k) - ridge * ||mu||^2``; ``F`` is ``Phi`` (Thurstone Case V, paper
002 eq. 2) or the logistic function (Bradley-Terry). The negative Hessian of the likelihood is the graph
Laplacian with edge weights ``wab_k w(d_k) + wba_k w(-d_k)``, ``w = -(log F)''``.

Iterations start from Berkson's minimum chi-square estimate (weighted least squares of ``F^-1`` of the
smoothed vote shares on ``mu_a - mu_b``). Newton steps solve ``(H + 2 ridge I) step = grad`` on the subspace
``sum mu = 0`` (``n - 1`` free parameters): small problems add ``11'/n`` to make the matrix invertible and
solve a batch of dense systems at once; large ones pin the first item (without a ridge), solve the sparse
Laplacian system by conjugate gradients and re-centre the step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import special
from scipy.sparse import coo_array, csr_array
from scipy.sparse.linalg import LinearOperator, cg

from perceptiq.errors import FitError

_HALF_LOG_2PI = 0.5 * np.log(2.0 * np.pi)
_SQRT_HALF = np.sqrt(0.5)
_DENSE_MAX_ITEMS = 128  # above this many items, Newton steps use sparse conjugate gradients
_XTOL = 1e-5  # converged after a full Newton step this small (quadratic convergence: error ~ step^2)
_MAX_ITER = 100
_ARMIJO = 1e-4
_CG_RTOL = 1e-12
_START_RTOL = 1e-4  # CG accuracy for the start and the first Newton steps


_Array4 = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
_Derivatives = Callable[[np.ndarray, np.ndarray, np.ndarray], _Array4]


@dataclass(frozen=True)
class Link:
    """``log F``; ``log_cdf_both(d) = (log F(d), log F(-d))``; ``derivatives(d, log F(d), log F(-d))`` =
    ``(g(d), w(d), g(-d), w(-d))`` with ``g = (log F)'`` and ``w = -(log F)''``; ``F^-1``; ``F'``."""

    log_cdf: Callable[[np.ndarray], np.ndarray]
    log_cdf_both: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    derivatives: _Derivatives
    inverse_cdf: Callable[[np.ndarray], np.ndarray]
    pdf: Callable[[np.ndarray], np.ndarray]


def _probit_derivatives(d: np.ndarray, log_pos: np.ndarray, log_neg: np.ndarray) -> _Array4:
    log_pdf = -0.5 * d * d - _HALF_LOG_2PI
    mills_pos, mills_neg = np.exp(log_pdf - log_pos), np.exp(log_pdf - log_neg)  # phi / Phi in log space
    return mills_pos, mills_pos * (d + mills_pos), mills_neg, mills_neg * (mills_neg - d)


def _logit_derivatives(d: np.ndarray, log_pos: np.ndarray, log_neg: np.ndarray) -> _Array4:
    lose, win = np.exp(log_neg), np.exp(log_pos)  # sigma(-d) = (log sigma)'(d), sigma(d)
    weight = win * lose
    return lose, weight, win, weight


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


def _normal_pdf(d: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * d * d - _HALF_LOG_2PI)


def _logistic_pdf(d: np.ndarray) -> np.ndarray:
    return special.expit(d) * special.expit(-d)


LINKS: dict[str, Link] = {
    "thurstone": Link(
        special.log_ndtr, _normal_log_cdf_both, _probit_derivatives, special.ndtri, _normal_pdf
    ),
    "bt": Link(special.log_expit, _logistic_log_cdf_both, _logit_derivatives, special.logit, _logistic_pdf),
}


def _scatter(values: np.ndarray, index: np.ndarray, size: int) -> np.ndarray:
    """Sum ``values`` (batch, k) into (batch, size) bins given by ``index`` (k,)."""
    batch = values.shape[0]
    flat = (np.arange(batch)[:, None] * size + index[None, :]).ravel()
    return np.bincount(flat, weights=values.ravel(), minlength=batch * size).reshape(batch, size)


@dataclass(frozen=True)
class Design:
    """Compared pairs ``a[k] < b[k]`` among ``n`` items; ``adjacency`` is a sparse pattern for large ``n``."""

    a: np.ndarray
    b: np.ndarray
    n: int
    ends: np.ndarray = field(init=False)
    adjacency: csr_array | None = field(init=False, default=None)
    perm: np.ndarray | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ends", np.concatenate([self.a, self.b]))
        if self.n > _DENSE_MAX_ITEMS:
            order = np.arange(2 * self.a.size, dtype=float)
            rows, cols = np.r_[self.a, self.b], np.r_[self.b, self.a]
            adjacency = coo_array((order, (rows, cols)), shape=(self.n, self.n)).tocsr()
            object.__setattr__(self, "adjacency", adjacency)
            object.__setattr__(self, "perm", adjacency.data.astype(np.int64))

    def scatter(self, per_pair: np.ndarray) -> np.ndarray:
        """``sum_k per_pair_k (e_a - e_b)`` per batch row: (batch, pairs) -> (batch, n)."""
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
        """``(H + 2 ridge I)^-1 rhs`` by Jacobi-preconditioned CG (first item pinned if no ridge)."""
        n, adjacency = self.n, self.adjacency
        doubled = np.concatenate([weights, weights])
        adjacency.data = doubled[self.perm]
        diag = np.bincount(self.ends, weights=doubled, minlength=n) + 2.0 * ridge
        first = 0 if ridge > 0 else 1
        full = np.zeros(n)

        def matvec(x: np.ndarray) -> np.ndarray:
            full[first:] = np.ravel(x)
            return (diag * full - adjacency @ full)[first:]

        inv_diag = 1.0 / np.where(diag > 0, diag, 1.0)[first:]
        size = (n - first, n - first)
        system = LinearOperator(size, matvec=matvec, dtype=float)
        precond = LinearOperator(size, matvec=lambda x: inv_diag * np.ravel(x), dtype=float)
        x, info = cg(system, rhs[first:], rtol=rtol, atol=0.0, maxiter=20 * n, M=precond)
        if info != 0:
            return np.linalg.solve(self.information(weights[None], ridge)[0], rhs)
        step = np.concatenate([np.zeros(first), x])
        return step - step.mean()

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
    value = np.sum(wab * log_pos + wba * log_neg, axis=1) - ridge * np.sum(mu * mu, axis=1)
    return _Point(mu, d, log_pos, log_neg, value)


def _derivatives(
    point: _Point, design: Design, wab: np.ndarray, wba: np.ndarray, link: Link, ridge: float
) -> tuple[np.ndarray, np.ndarray]:
    """Gradient (batch, n) of the penalised objective and the Laplacian edge weights (batch, pairs)."""
    s_pos, w_pos, s_neg, w_neg = link.derivatives(point.d, point.log_pos, point.log_neg)
    grad = design.scatter(wab * s_pos - wba * s_neg) - 2.0 * ridge * point.mu
    return grad, wab * w_pos + wba * w_neg


def _initial(design: Design, wab: np.ndarray, wba: np.ndarray, link: Link, ridge: float) -> np.ndarray:
    """Berkson's minimum chi-square start: weighted least squares of ``F^-1(share)`` on ``mu_a - mu_b``."""
    total = wab + wba
    share = (wab + 0.5) / (total + 1.0)
    y = link.inverse_cdf(share)
    weights = total * link.pdf(y) ** 2 / (share * (1.0 - share))  # inverse delta-method variance of y
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
    rtol = _START_RTOL
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
        if np.all(t == 1.0) and size < _XTOL:
            return point.mu, it
        rtol = min(_START_RTOL, max(_CG_RTOL, size * size))  # inexact Newton, forcing term ~ error
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
