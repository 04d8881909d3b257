"""Nonlinear mappings of quality predictions onto the MOS scale, fitted before PLCC and RMSE.

x = predictions (abscissa), y = MOS (ordinate); the fitted f maps predictions onto the MOS scale and
PLCC = Pearson(f(x), y). Mappings (VQEG FR-TV Phase II final report, 2003):

* ``"logistic4"``: ``f(x) = b2 + (b1 - b2) / (1 + exp(-(x - b3) / |b4|))`` by Levenberg-Marquardt
  (``scipy.optimize.curve_fit``) from ``p0 = [max y, min y, mean x, 0.5]``, ``maxfev = 1e8``: the
  CodaLab scorer of NTIRE 2025 T2I and VQualA 2025.
* ``"logistic4_std"``: the same with ``p0[3] = std(x)`` (EvalMuse ``utils``, LIQE ``BIQA_benchmark``).
* ``"logistic4_deqa"``: ``f(x) = (b1 - b2) / (1 + exp(-(x - b3) / b4)) + b2`` (no abs),
  ``p0 = [max y, min y, mean x, std(x) / 4]``, ``maxfev = 10000`` (DeQA-Score).
* ``"logistic5"``: ``f(x) = b1 (1/2 - 1 / (1 + exp(b2 (x - b3)))) + b4 x + b5`` (VQEG FR-TV Phase II;
  Sheikh et al., IEEE TIP 2006), fitted on standardised data from ``[ptp, sign(r), 0, 0, 0]``.
* ``"poly3"``, ``"poly4"``: ordinary least squares polynomial (``np.polyfit``), not monotone; poly3
  is the NTIRE 2025 report's wording, poly4 the ISRG-Q report's scatter plots.
* ``"poly3_monotonic"``, ``"poly4_monotonic"``: least squares with the derivative constrained to one
  sign on 256 points spanning the data range (both directions tried, lower residual kept; VQEG
  practice of a monotonic cubic).
* ``"linear"``: ordinary least squares line.

Nothing forces a logistic to increase, so a fitted PLCC is sign-blind: an anti-correlated predictor
gets PLCC close to +1. :func:`fit_mapping_or_fallback` emits a :class:`~perceptiq.errors.FitWarning`
when the fitted mapping decreases, and falls back to the linear mapping (with a warning) when a fit
fails to converge.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import scipy.optimize

from perceptiq.errors import FitError, FitWarning, InputError, UndefinedStatisticError

__all__ = [
    "Mapping",
    "MAPPINGS",
    "MIN_ITEMS",
    "FittedMapping",
    "fit_mapping",
    "fit_mapping_or_fallback",
    "logistic4",
    "logistic4_deqa",
    "logistic5",
    "mapped_predictions_batch",
]

Mapping = Literal[
    "none",
    "linear",
    "logistic4",
    "logistic4_std",
    "logistic4_deqa",
    "logistic5",
    "poly3",
    "poly4",
    "poly3_monotonic",
    "poly4_monotonic",
]
MAPPINGS: tuple[str, ...] = get_args(Mapping)

MIN_ITEMS: dict[str, int] = {
    "none": 2,
    "linear": 2,
    "logistic4": 4,
    "logistic4_std": 4,
    "logistic4_deqa": 4,
    "logistic5": 5,
    "poly3": 4,
    "poly4": 5,
    "poly3_monotonic": 4,
    "poly4_monotonic": 5,
}


def logistic4(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """``b2 + (b1 - b2) / (1 + exp(-(x - b3) / |b4|))`` (CodaLab NTIRE/VQualA scorer)."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return b2 + (b1 - b2) / (1.0 + np.exp(-(x - b3) / np.abs(b4)))


def logistic4_deqa(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """``(b1 - b2) / (1 + exp(-(x - b3) / b4)) + b2`` (DeQA-Score ``cal_plcc_srcc``)."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return (b1 - b2) / (1.0 + np.exp(-(x - b3) / b4)) + b2


def logistic5(x: np.ndarray, b1: float, b2: float, b3: float, b4: float, b5: float) -> np.ndarray:
    """``b1 (1/2 - 1 / (1 + exp(b2 (x - b3)))) + b4 x + b5`` (VQEG; Sheikh et al. 2006)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return b1 * (0.5 - 1.0 / (1.0 + np.exp(b2 * (x - b3)))) + b4 * x + b5


@dataclass(frozen=True)
class FittedMapping:
    """A fitted mapping from predictions to the MOS scale.

    Attributes:
        kind: mapping name (see :data:`MAPPINGS`); the kind actually fitted.
        params: fitted parameters (logistics: b1..; polynomials: shift, scale, coefficients high->low
            of the polynomial in ``(x - shift) / scale``; linear: slope, intercept).
        increasing: whether f(max x) >= f(min x) over the fitted data range.
        requested: the kind that was asked for (differs from ``kind`` after a fallback).
        note: why a fallback happened, or "".
    """

    kind: str
    params: tuple[float, ...]
    increasing: bool
    requested: str = ""
    note: str = ""
    _fn: Callable[[np.ndarray], np.ndarray] = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._fn(np.asarray(x, dtype=np.float64))

    @property
    def fell_back(self) -> bool:
        """True when the requested fit failed and another mapping was used instead."""
        return bool(self.requested) and self.requested != self.kind


def _make(kind: str, params: tuple[float, ...], fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray):
    lo, hi = fn(np.array([x.min(), x.max()]))
    return FittedMapping(kind=kind, params=params, increasing=bool(hi >= lo), requested=kind, _fn=fn)


def _fit_curve(f, x, y, p0, maxfev: int) -> np.ndarray:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", scipy.optimize.OptimizeWarning)
        try:
            params, _ = scipy.optimize.curve_fit(f, x, y, p0=p0, maxfev=maxfev)
        except (RuntimeError, ValueError, TypeError) as err:
            raise FitError(f"{f.__name__} fit did not converge: {err}") from err
    if not np.all(np.isfinite(params)):
        raise FitError(f"{f.__name__} fit gave non-finite parameters")
    return params


def _fit_logistic4(x: np.ndarray, y: np.ndarray, kind: str) -> FittedMapping:
    fourth = {"logistic4": 0.5, "logistic4_std": float(np.std(x)), "logistic4_deqa": float(np.std(x)) / 4}[
        kind
    ]
    p0 = [float(np.max(y)), float(np.min(y)), float(np.mean(x)), fourth]
    if kind == "logistic4_deqa":
        params = _fit_curve(logistic4_deqa, x, y, p0, maxfev=10_000)
        return _make(kind, tuple(map(float, params)), lambda v: logistic4_deqa(v, *params), x)
    params = _fit_curve(logistic4, x, y, p0, maxfev=100_000_000)
    return _make(kind, tuple(map(float, params)), lambda v: logistic4(v, *params), x)


def _logistic5_jacobian(x: np.ndarray, b1: float, b2: float, b3: float, b4: float, b5: float) -> np.ndarray:
    """Analytic Jacobian of :func:`logistic5` with respect to (b1, ..., b5), shape (n, 5)."""
    e = np.exp(np.clip(b2 * (x - b3), -700.0, 700.0))
    s = 1.0 / (1.0 + e)
    ds = e * s * s  # derivative of -1/(1 + e^u) with respect to u
    return np.stack([0.5 - s, b1 * ds * (x - b3), -b1 * b2 * ds, x, np.ones_like(x)], axis=1)


def _fit_logistic5(x: np.ndarray, y: np.ndarray) -> FittedMapping:
    """Logistic-5 fitted on standardised x and y (conditioning), analytic Jacobian, rel. tolerance 1e-7.

    On nearly linear data the 5-parameter model has a flat ridge (b1 grows while b4 compensates);
    the tolerance stops the walk along it once the residual no longer improves (PLCC changes < 1e-5).
    """
    mx, sx, my, sy = float(np.mean(x)), float(np.std(x)), float(np.mean(y)), float(np.std(y))
    z, v = (x - mx) / sx, (y - my) / sy
    r = np.corrcoef(x, y)[0, 1]
    sign = 1.0 if r >= 0 else -1.0
    last_error: FitError | None = None
    for s in (sign, -sign):
        p0 = [float(np.ptp(v)), s, 0.0, 0.0, 0.0]
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", scipy.optimize.OptimizeWarning)
            try:
                params, _ = scipy.optimize.curve_fit(
                    logistic5, z, v, p0=p0, jac=_logistic5_jacobian, maxfev=20_000, ftol=1e-7, xtol=1e-7
                )
            except (RuntimeError, ValueError) as err:
                last_error = FitError(f"logistic5 fit did not converge: {err}")
                continue
        if not np.all(np.isfinite(params)):
            last_error = FitError("logistic5 fit gave non-finite parameters")
            continue
        # back to the original scales: f(x) = my + sy * g((x - mx) / sx)
        b1, b2, b3, b4, b5 = (float(p) for p in params)
        original = (sy * b1, b2 / sx, mx + sx * b3, sy * b4 / sx, my + sy * (b5 - b4 * mx / sx))
        return _make("logistic5", original, lambda t, q=original: logistic5(t, *q), x)
    raise last_error if last_error else FitError("logistic5 fit failed")


def _poly_fn(shift: float, scale: float, coef: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    return lambda v: np.polyval(coef, (v - shift) / scale)


def _fit_poly(x: np.ndarray, y: np.ndarray, degree: int, monotonic: bool, kind: str) -> FittedMapping:
    shift, scale = float(np.mean(x)), float(np.std(x))
    z = (x - shift) / scale
    coef = np.polyfit(z, y, degree)
    if monotonic:
        coef = _monotone_coefficients(z, y, degree, coef)
    return _make(kind, (shift, scale, *map(float, coef)), _poly_fn(shift, scale, coef), x)


def _monotone_coefficients(z: np.ndarray, y: np.ndarray, degree: int, start: np.ndarray) -> np.ndarray:
    """Least-squares polynomial coefficients (high->low) with a one-signed derivative on the data range."""
    grid = np.linspace(z.min(), z.max(), 256)
    powers = np.arange(degree, -1, -1)
    # derivative of sum c_k z^k at the grid: (256, degree + 1), the constant term contributes 0
    deriv = np.where(powers > 0, powers * grid[:, None] ** np.maximum(powers - 1, 0), 0.0)
    slopes = deriv @ start
    if (slopes >= 0).all() or (slopes <= 0).all():
        return start
    vander = np.vander(z, degree + 1)
    best, best_sse = None, np.inf
    for direction in (1.0, -1.0):
        result = scipy.optimize.minimize(
            lambda c: float(np.sum((vander @ c - y) ** 2)),
            start,
            jac=lambda c: 2.0 * vander.T @ (vander @ c - y),
            constraints=[
                {
                    "type": "ineq",
                    "fun": lambda c, d=direction: d * (deriv @ c),
                    "jac": lambda c, d=direction: d * deriv,
                }
            ],
            method="SLSQP",
            options={"maxiter": 500, "ftol": 1e-12},
        )
        sse = float(np.sum((vander @ result.x - y) ** 2))
        if result.success and sse < best_sse:
            best, best_sse = result.x, sse
    if best is None:
        raise FitError(f"monotonic polynomial (degree {degree}) fit did not converge")
    return best


def fit_mapping(pred: np.ndarray, mos: np.ndarray, kind: Mapping) -> FittedMapping:
    """Fit mapping ``kind`` of predictions onto MOS.

    Raises:
        UndefinedStatisticError: fewer items than the mapping has parameters, or constant input.
        FitError: the optimiser did not converge.
        InputError: unknown ``kind``.
    """
    if kind not in MAPPINGS:
        raise InputError(f"unknown mapping {kind!r}; choose from {', '.join(MAPPINGS)}")
    x = np.asarray(pred, dtype=np.float64)
    y = np.asarray(mos, dtype=np.float64)
    if x.size < MIN_ITEMS[kind]:
        raise UndefinedStatisticError(f"{kind} mapping needs at least {MIN_ITEMS[kind]} items, got {x.size}")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        raise UndefinedStatisticError(f"{kind} mapping: constant predictions or MOS cannot be fitted")
    if kind == "none":
        return FittedMapping("none", (), True, "none", "", lambda v: v)
    if kind == "linear":
        slope, intercept = np.polyfit(x, y, 1)
        return _make("linear", (float(slope), float(intercept)), lambda v: slope * v + intercept, x)
    if kind.startswith("logistic4"):
        return _fit_logistic4(x, y, kind)
    if kind == "logistic5":
        return _fit_logistic5(x, y)
    degree = 3 if kind.startswith("poly3") else 4
    return _fit_poly(x, y, degree, kind.endswith("_monotonic"), kind)


def fit_mapping_or_fallback(
    pred: np.ndarray,
    mos: np.ndarray,
    kind: Mapping,
    *,
    strict: bool = False,
) -> FittedMapping | None:
    """Fit ``kind``; on non-convergence fall back to the linear mapping, saying so.

    Returns None for degenerate data (too few items, constant input) unless ``strict``, which
    raises instead. Emits :class:`~perceptiq.errors.FitWarning` when falling back and when the fitted
    mapping is decreasing (a sign-blind PLCC).
    """
    try:
        fitted = fit_mapping(pred, mos, kind)
    except UndefinedStatisticError:
        if strict:
            raise
        return None
    except FitError as err:
        if strict:
            raise
        linear = fit_mapping(pred, mos, "linear")
        note = f"{kind} fit failed ({err}); fell back to the linear mapping"
        warnings.warn(note, FitWarning, stacklevel=3)
        fitted = FittedMapping("linear", linear.params, linear.increasing, kind, note, linear._fn)
    if not fitted.increasing and kind != "none":
        warnings.warn(
            f"the fitted {fitted.kind} mapping decreases: predictions are anti-correlated with MOS and "
            "PLCC after fitting is sign-blind (check SRCC's sign)",
            FitWarning,
            stacklevel=3,
        )
    return fitted


# ------------------------------------------------------------------------- bootstrap resamples
#
# A bootstrap resample is a count vector w over the n items (see bootstrap.py); a least-squares fit
# to the expanded resample minimises sum_i w_i (y_i - f(x_i))^2, so all R resamples of one
# mapping are fitted at once as R weighted problems sharing x and y.

_BATCH_MAX_ITER = 40
_BATCH_FTOL = 1e-10


# h_p(u) = (sigmoid(u) - 1/2 - [p = 3] u/4) / u^p for p = 1, 3: Taylor coefficients in u^2, u^4, ...
# (from tanh x = x - x^3/3 + 2x^5/15 - 17x^7/315 + 62x^9/2835, sigmoid(u) - 1/2 = tanh(u/2)/2).
_SERIES = {
    1: (1 / 4, -1 / 48, 1 / 480, -17 / 80640, 31 / 1451520),
    3: (-1 / 48, 1 / 480, -17 / 80640, 31 / 1451520),
}
_SERIES_BELOW = 0.2


def _shape(u: np.ndarray, power: int) -> tuple[np.ndarray, np.ndarray]:
    """h_p(u) and its derivative, by the Taylor series near 0 (no cancellation) and directly elsewhere."""
    coef = _SERIES[power]
    small = np.abs(u) < _SERIES_BELOW
    us = np.where(small, u, 0.0)
    u2 = us * us
    h_series = sum(c * u2**k for k, c in enumerate(coef))
    dh_series = sum(2 * k * c * us * u2 ** (k - 1) for k, c in enumerate(coef) if k > 0)
    ul = np.where(small, 1.0, u)
    sig = 0.5 * (1.0 + np.tanh(0.5 * ul))
    lin = 0.25 if power == 3 else 0.0
    g = sig - 0.5 - lin * ul
    h_direct = g / ul**power
    dh_direct = (sig * (1.0 - sig) - lin) / ul**power - power * g / ul ** (power + 1)
    return np.where(small, h_series, h_direct), np.where(small, dh_series, dh_direct)


def _project(
    phi: np.ndarray, w: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted least squares of each target column on the basis ``phi`` (R, n, m), row by row.

    ``targets`` (R, n, t); returns coefficients (R, m, t), residuals (R, n, t) and whether each row's
    Gram matrix is usable.
    """
    phi_w = phi * w[:, :, None]
    phi_wt = phi_w.transpose(0, 2, 1)
    gram = phi_wt @ phi
    gram += 1e-12 * np.einsum("rmm->r", gram)[:, None, None] * np.eye(gram.shape[1])
    coef = np.linalg.solve(gram, phi_wt @ targets)
    return coef, targets - phi @ coef, np.isfinite(coef).all(axis=(1, 2))


def _batch_logistic(
    z: np.ndarray, v: np.ndarray, w: np.ndarray, fixed: np.ndarray, start: np.ndarray
) -> np.ndarray:
    """Fit a logistic mapping to every row of weights ``w`` at once: fitted values (R, n), NaN on failure.

    Both logistics of this module are ``alpha sigmoid(a (z - c)) + fixed @ beta``: logistic-4 with
    ``fixed`` = [1], logistic-5 with ``fixed`` = [z, 1]. Variable projection (Golub and Pereyra, SIAM
    J. Numer. Anal. 1973, with Kaufman's Jacobian, BIT 1975): for given (a, c) the linear coefficients
    are a weighted least-squares solve, and Levenberg-Marquardt runs on (a, c) alone. The sigmoid
    column is replaced by ``(z - c)^p h_p(a (z - c))``, h_p(u) = (sigmoid(u) - 1/2 - [p = 3] u/4) / u^p
    (p = 1 for logistic-4, 3 for logistic-5), which spans the same
    functions together with the fixed columns but stays well defined as a -> 0, where the logistic
    tends to its limit (a line, resp. a cubic in z); the unreduced fit crawls along that valley.
    A row stops when the Gauss-Newton step would lower its cost by less than a relative 1e-10, its
    step is negligible or damping has grown past 1e6 (at most 40 steps; later ones change PLCC by
    less than 1e-5).
    """
    power = 3 if fixed.shape[1] == 2 else 1
    rows_total = w.shape[0]
    theta = np.array(np.broadcast_to(start, (rows_total, 2)), dtype=np.float64)
    lam = np.full(rows_total, 1e-3)
    target = np.broadcast_to(v[None, :, None], (rows_total, v.size, 1))
    base = np.broadcast_to(fixed[None], (rows_total, *fixed.shape))

    def solve(th: np.ndarray, rows: np.ndarray):
        t = z[None, :] - th[:, 1:2]
        h, dh = _shape(th[:, :1] * t, power)
        column = t**power * h
        phi = np.concatenate([column[:, :, None], base[rows]], axis=2)
        coef, res, ok = _project(phi, w[rows], target[rows])
        # derivatives of the column with respect to a and c
        d_col = np.stack(
            [t ** (power + 1) * dh, -power * t ** (power - 1) * h - th[:, :1] * t**power * dh], 2
        )
        return phi, coef, -res[:, :, 0], ok, d_col

    with np.errstate(all="ignore"):
        everyone = np.arange(rows_total)
        _, _, res, ok, _ = solve(theta, everyone)
        cost = np.where(ok, np.einsum("rn,rn->r", w, res * res), np.nan)
        fitted = v[None, :] + res
        active = np.isfinite(cost)
        for _ in range(_BATCH_MAX_ITER):
            rows = np.flatnonzero(active)
            if rows.size == 0:
                break
            th = theta[rows]
            p1, c1, r1, _, d_col = solve(th, rows)
            _, jac, _ = _project(p1, w[rows], c1[:, :1, :1] * d_col)  # Kaufman's reduced Jacobian
            jw = jac * w[rows][:, :, None]
            hess = jw.transpose(0, 2, 1) @ jac
            grad = (jw.transpose(0, 2, 1) @ r1[:, :, None])[:, :, 0]
            # converged: the Gauss-Newton step would lower the cost by less than a relative 1e-10
            newton = np.linalg.solve(hess + 1e-12 * np.eye(2), grad[:, :, None])[:, :, 0]
            done = ~(np.einsum("rp,rp->r", grad, newton) > _BATCH_FTOL * cost[rows])
            active[rows[done]] = False
            damping = lam[rows, None] * np.maximum(np.einsum("rpp->rp", hess), 1e-12)
            step = np.linalg.solve(hess + damping[:, :, None] * np.eye(2), -grad[:, :, None])[:, :, 0]
            trial = th + step
            _, _, r_new, ok_new, _ = solve(trial, rows)
            cost_new = np.einsum("rn,rn->r", w[rows], r_new * r_new)
            better = ok_new & np.isfinite(cost_new) & (cost_new < cost[rows])
            tiny = np.all(np.abs(step) <= 1e-9 * (1.0 + np.abs(th)), axis=1)
            up = rows[better]
            theta[up], cost[up], fitted[up] = trial[better], cost_new[better], v[None, :] + r_new[better]
            lam[up] = np.maximum(lam[up] / 3.0, 1e-12)
            worse = rows[~better]
            lam[worse] *= 4.0
            active[worse[lam[worse] > 1e6]] = False
            active[rows[tiny]] = False
    fitted[~np.isfinite(cost)] = np.nan
    return fitted


def _batch_polynomial(z: np.ndarray, v: np.ndarray, w: np.ndarray, degree: int) -> np.ndarray:
    """Weighted least-squares polynomial coefficients (high->low) of every row of ``w``; NaN if singular."""
    vander = np.vander(z, degree + 1)
    m = vander.shape[1]
    gram = (w @ (vander[:, :, None] * vander[:, None, :]).reshape(z.size, m * m)).reshape(-1, m, m)
    rhs = w @ (vander * v[:, None])
    coef = np.full((w.shape[0], m), np.nan)
    well = np.linalg.cond(gram) < 1e12
    if well.any():
        coef[well] = np.linalg.solve(gram[well], rhs[well][:, :, None])[:, :, 0]
    return coef


def mapped_predictions_batch(
    pred: np.ndarray, mos: np.ndarray, counts: np.ndarray, kind: Mapping, start: FittedMapping | None = None
) -> np.ndarray:
    """Fitted values (R, n) of mapping ``kind`` fitted to each bootstrap resample (rows of ``counts``).

    All resamples are fitted together as weighted least-squares problems (weights = draw counts),
    warm-started from ``start`` (the mapping fitted to all items; fitted here when omitted), which is
    what makes thousands of nonlinear fits affordable. Data are standardised with the full sample's
    mean and standard deviation first (the fitted function does not depend on it). Rows whose fit
    diverges, or is undefined (constant resample), take the weighted linear fit, as
    :func:`fit_mapping_or_fallback` falls back; rows with a constant resample are NaN.
    """
    x = np.asarray(pred, dtype=np.float64)
    y = np.asarray(mos, dtype=np.float64)
    w = np.asarray(counts, dtype=np.float64)
    mx, sx, my, sy = float(x.mean()), float(x.std()), float(y.mean()), float(y.std())
    if sx == 0 or sy == 0:
        return np.full(w.shape, np.nan)
    z, v = (x - mx) / sx, (y - my) / sy
    drawn = w > 0
    zmin = np.where(drawn, z, np.inf).min(axis=1)
    zmax = np.where(drawn, z, -np.inf).max(axis=1)
    vmin = np.where(drawn, v, np.inf).min(axis=1)
    vmax = np.where(drawn, v, -np.inf).max(axis=1)
    constant = (zmax <= zmin) | (vmax <= vmin)
    linear = _batch_polynomial(z, v, w, 1)
    fitted = linear[:, :1] * z + linear[:, 1:]
    if kind == "none":
        fitted = np.broadcast_to(z, w.shape).copy()
    elif kind.startswith("logistic"):
        if start is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FitWarning)
                start = fit_mapping_or_fallback(x, y, kind)
        if kind == "logistic5":
            fixed = np.stack([z, np.ones_like(z)], axis=1)
            theta0 = np.array([1.0 if np.corrcoef(z, v)[0, 1] >= 0 else -1.0, 0.0])
            if start is not None and not start.fell_back:
                theta0 = np.array([start.params[1] * sx, (start.params[2] - mx) / sx])
        else:
            fixed = np.ones((z.size, 1))
            theta0 = np.array([1.0 if np.corrcoef(z, v)[0, 1] >= 0 else -1.0, 0.0])
            if start is not None and not start.fell_back:
                b3, b4 = start.params[2], start.params[3]
                theta0 = np.array([sx / b4 if b4 else 1.0, (b3 - mx) / sx])
                if kind != "logistic4_deqa":
                    theta0[0] = abs(theta0[0])
        values = _batch_logistic(z, v, w, fixed, theta0)
        ok = np.all(np.isfinite(values), axis=1)
        fitted[ok] = values[ok]
    elif kind != "linear":
        degree = 3 if kind.startswith("poly3") else 4
        coef = _batch_polynomial(z, v, w, degree)
        ok = np.all(np.isfinite(coef), axis=1)
        if kind.endswith("_monotonic"):
            powers = np.arange(degree, -1, -1)
            grid = np.linspace(zmin, zmax, 256, axis=1)  # (R, 256): each resample's data range
            slopes = sum(
                k * coef[:, j : j + 1] * grid ** max(k - 1, 0) for j, k in enumerate(powers) if k > 0
            )
            bent = ok & ~(np.all(slopes >= 0, axis=1) | np.all(slopes <= 0, axis=1))
            for r in np.flatnonzero(bent):
                draws = w[r].astype(np.int64)
                try:
                    coef[r] = _monotone_coefficients(
                        np.repeat(z, draws), np.repeat(v, draws), degree, coef[r]
                    )
                except FitError:
                    ok[r] = False
        if ok.any():
            fitted[ok] = coef[ok] @ np.vander(z, degree + 1).T
    fitted[constant] = np.nan
    return my + sy * fitted
