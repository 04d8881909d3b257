"""Nonlinear mappings of quality predictions onto the MOS scale, fitted before PLCC and RMSE.

x = predictions (abscissa), y = MOS (ordinate); the fitted f maps predictions onto the MOS scale and
PLCC = Pearson(f(x), y). Mappings (scipy.stats conventions, VQEG):

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
