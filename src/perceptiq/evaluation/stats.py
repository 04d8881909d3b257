"""Correlation and agreement statistics of quality predictions (numpy in, floats out).

Conventions (scipy.stats conventions):

* SRCC is Spearman's rho as the Pearson correlation of *average* ranks (ties share the mean of
  their positions), as ``scipy.stats.spearmanr``.
* KRCC is Kendall's tau-b (ties corrected in both variables).
* PLCC is Pearson's r, either on raw predictions or after a nonlinear mapping of the predictions
  onto the MOS scale (see :mod:`perceptiq.evaluation.fitting`). SRCC is always on raw predictions.
* Degenerate input (constant vector, fewer than two items, too few for a fit) gives NaN, or
  raises :class:`~perceptiq.errors.UndefinedStatisticError` with ``strict=True``.
* Non-finite values or arrays of different lengths always raise :class:`~perceptiq.errors.InputError`.

All statistics are higher-is-better except RMSE and the outlier ratio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.stats
from numpy.typing import ArrayLike

from perceptiq.errors import InputError, UndefinedStatisticError
from perceptiq.evaluation.fitting import FittedMapping, Mapping, fit_mapping_or_fallback

__all__ = [
    "as_vector",
    "average_ranks",
    "pearson",
    "srcc",
    "krcc",
    "plcc",
    "fitted_plcc",
    "rmse",
    "outlier_ratio",
    "preference",
    "two_afc_scores",
    "two_afc_score",
    "binarize",
    "element_accuracy",
    "heatmap_to_mask",
    "binary_mask",
    "MaskCounts",
    "mask_counts",
    "MaskF1",
    "f1_from_counts",
    "mask_f1",
]


def as_vector(values: ArrayLike, name: str = "values") -> np.ndarray:
    """Return ``values`` as a finite 1-D float64 array or raise :class:`InputError` naming ``name``."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        where = np.flatnonzero(bad)[:5].tolist()
        raise InputError(f"{name} has {int(bad.sum())} non-finite value(s) (NaN/inf) at positions {where}")
    return arr


def _pair(pred: ArrayLike, mos: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    x = as_vector(pred, "predictions")
    y = as_vector(mos, "ground truth")
    if x.shape != y.shape:
        raise InputError(f"predictions ({x.size}) and ground truth ({y.size}) differ in length")
    return x, y


def _undefined(reason: str, strict: bool) -> float:
    if strict:
        raise UndefinedStatisticError(reason)
    return float("nan")


def _degenerate_reason(x: np.ndarray, y: np.ndarray, minimum: int = 2) -> str | None:
    if x.size < minimum:
        return f"needs at least {minimum} items, got {x.size}"
    if np.ptp(x) == 0:
        return "predictions are constant: correlation is undefined"
    if np.ptp(y) == 0:
        return "ground truth is constant: correlation is undefined"
    return None


def average_ranks(values: ArrayLike) -> np.ndarray:
    """Ranks 1..n with ties given the mean of their positions (``scipy.stats.rankdata(method='average')``)."""
    return scipy.stats.rankdata(np.asarray(values, dtype=np.float64), method="average")


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's r of two finite non-constant vectors (centred computation for accuracy)."""
    xc = x - x.mean()
    yc = y - y.mean()
    denom = np.sqrt(np.dot(xc, xc) * np.dot(yc, yc))
    return float(np.clip(np.dot(xc, yc) / denom, -1.0, 1.0))


def srcc(pred: ArrayLike, mos: ArrayLike, *, strict: bool = False) -> float:
    """Spearman rank-order correlation (average ranks for ties); NaN for constant input.

    Example:
        >>> srcc([1, 2, 3, 4], [1, 3, 2, 4])
        0.8
    """
    x, y = _pair(pred, mos)
    reason = _degenerate_reason(x, y)
    if reason:
        return _undefined(f"SRCC: {reason}", strict)
    return pearson(average_ranks(x), average_ranks(y))


def krcc(pred: ArrayLike, mos: ArrayLike, *, strict: bool = False) -> float:
    """Kendall rank correlation, tau-b (ties corrected); NaN for constant input.

    tau_b = (C - D) / sqrt((n0 - n1)(n0 - n2)) with C/D concordant/discordant pairs, n0 = n(n-1)/2,
    n1, n2 the tied pairs in each variable (Kendall 1945). Computed in O(n log n) by scipy.

    Example:
        >>> round(krcc([1, 2, 3, 4], [1, 3, 2, 4]), 4)
        0.6667
    """
    x, y = _pair(pred, mos)
    reason = _degenerate_reason(x, y)
    if reason:
        return _undefined(f"KRCC: {reason}", strict)
    return float(scipy.stats.kendalltau(x, y, variant="b").statistic)


def plcc(
    pred: ArrayLike,
    mos: ArrayLike,
    *,
    mapping: Mapping = "none",
    strict: bool = False,
) -> float:
    """Pearson linear correlation, optionally after mapping predictions onto the MOS scale.

    ``mapping`` is one of :data:`perceptiq.evaluation.fitting.MAPPINGS` ("none" = raw Pearson,
    "logistic4" = the VQualA/NTIRE CodaLab 4-parameter logistic, ...). A fitted logistic is
    sign-blind: an anti-correlated predictor gets PLCC close to +1 (a :class:`FitWarning` says so).
    A fit that fails falls back to the linear mapping with a :class:`FitWarning`.

    Example:
        >>> round(plcc([1, 2, 3, 4], [2, 4, 6, 9]), 4)
        0.9944
    """
    x, y = _pair(pred, mos)
    reason = _degenerate_reason(x, y)
    if reason:
        return _undefined(f"PLCC: {reason}", strict)
    if mapping == "none":
        return pearson(x, y)
    return fitted_plcc(x, y, fit_mapping_or_fallback(x, y, mapping, strict=strict), mapping, strict=strict)


def fitted_plcc(
    pred: ArrayLike,
    mos: ArrayLike,
    fitted: FittedMapping | None,
    mapping: Mapping,
    *,
    strict: bool = False,
) -> float:
    """:func:`plcc` through ``fitted``, the ``mapping`` already fitted to these data (None: the fit
    was undefined), for a caller that keeps the fitted mapping and so need not fit it twice.

    Example:
        >>> from perceptiq.evaluation.fitting import fit_mapping
        >>> x, y = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 9.0]
        >>> fitted_plcc(x, y, fit_mapping(x, y, "linear"), "linear") == plcc(x, y, mapping="linear")
        True
    """
    x, y = _pair(pred, mos)
    reason = _degenerate_reason(x, y)
    if reason:
        return _undefined(f"PLCC: {reason}", strict)
    if fitted is None:
        return _undefined(f"PLCC ({mapping}): too few items or degenerate data for the fit", strict)
    yhat = fitted(x)
    if np.ptp(yhat) == 0:
        return _undefined(f"PLCC ({mapping}): the fitted mapping is constant", strict)
    return pearson(yhat, y)


def rmse(pred: ArrayLike, mos: ArrayLike, *, mapping: Mapping = "none", strict: bool = False) -> float:
    """Root-mean-square error between (mapped) predictions and MOS, in MOS units; lower is better."""
    x, y = _pair(pred, mos)
    if x.size == 0:
        return _undefined("RMSE: no items", strict)
    if mapping != "none":
        fitted = fit_mapping_or_fallback(x, y, mapping, strict=strict)
        if fitted is None:
            return _undefined(f"RMSE ({mapping}): too few items or degenerate data for the fit", strict)
        x = fitted(x)
    return float(np.sqrt(np.mean((x - y) ** 2)))


def outlier_ratio(
    pred: ArrayLike,
    mos: ArrayLike,
    mos_std: ArrayLike,
    *,
    mapping: Mapping = "logistic4",
    n_std: float = 2.0,
    strict: bool = False,
) -> float:
    """Fraction of items whose mapped prediction is more than ``n_std`` MOS standard deviations off.

    VQEG FR-TV Phase I / ITU-T P.1401 outlier ratio: item i is an outlier when
    ``|f(pred_i) - mos_i| > n_std * mos_std_i``. Lower is better, range [0, 1].
    """
    x, y = _pair(pred, mos)
    s = as_vector(mos_std, "MOS standard deviations")
    if s.shape != x.shape:
        raise InputError(f"MOS standard deviations ({s.size}) and predictions ({x.size}) differ in length")
    if (s < 0).any():
        raise InputError("MOS standard deviations must be non-negative")
    if x.size == 0:
        return _undefined("outlier ratio: no items", strict)
    if mapping != "none":
        fitted = fit_mapping_or_fallback(x, y, mapping, strict=strict)
        if fitted is None:
            return _undefined(f"outlier ratio ({mapping}): too few items for the fit", strict)
        x = fitted(x)
    return float(np.mean(np.abs(x - y) > n_std * s))


TieRule = Literal["half", "second"]


def preference(score_first: ArrayLike, score_second: ArrayLike, *, tie: TieRule = "half") -> np.ndarray:
    """Model preference q for the first item of each pair: 1 if it scores higher, 0 if lower.

    ``tie="half"`` (default) gives 0.5 on equal scores; ``tie="second"`` reproduces the SR-IQA
    reference code, whose strict ``s1 > s2`` picks the second image on a tie (SR-IQA-SMC25 liqe_test_csv.py).
    """
    a = as_vector(score_first, "scores of first items")
    b = as_vector(score_second, "scores of second items")
    if a.shape != b.shape:
        raise InputError("scores of first and second items differ in length")
    q = (a > b).astype(np.float64)
    if tie == "half":
        q[a == b] = 0.5
    elif tie != "second":
        raise InputError(f"tie must be 'half' or 'second', got {tie!r}")
    return q


def two_afc_scores(p_first: ArrayLike, q_first: ArrayLike) -> np.ndarray:
    """Per-pair 2AFC agreement ``p q + (1 - p)(1 - q)`` (Chen et al., Learning from Model Rankings, 2025,
    RealSR-1K benchmark).

    ``p_first``: fraction of human votes for the first item, in [0, 1]; ``q_first``: the model's
    preference for it, in [0, 1] (see :func:`preference`).
    """
    p = as_vector(p_first, "human preference fractions")
    q = as_vector(q_first, "model preferences")
    if p.shape != q.shape:
        raise InputError("human preferences and model preferences differ in length")
    for name, v in (("human preference fractions", p), ("model preferences", q)):
        if ((v < 0) | (v > 1)).any():
            raise InputError(f"{name} must lie in [0, 1]")
    return p * q + (1.0 - p) * (1.0 - q)


def two_afc_score(
    p_first: ArrayLike,
    score_first: ArrayLike,
    score_second: ArrayLike,
    *,
    tie: TieRule = "half",
) -> float:
    """Mean 2AFC score of a model on human-voted pairs; 0.5 = chance, ceiling = mean max(p, 1 - p).

    Example:
        >>> two_afc_score([0.8, 0.3], [5.0, 1.0], [2.0, 1.0])
        0.65
    """
    q = preference(score_first, score_second, tie=tie)
    scores = two_afc_scores(p_first, q)
    if scores.size == 0:
        raise InputError("2AFC score: no pairs")
    return float(scores.mean())


def binarize(values: ArrayLike, threshold: float = 0.5) -> np.ndarray:
    """1 where ``value >= threshold`` else 0 (EvalMuse ``eval.py`` rule: 0.5 -> 1)."""
    return (np.asarray(values, dtype=np.float64) >= threshold).astype(np.int8)


def element_accuracy(pred: ArrayLike, gt: ArrayLike, *, threshold: float = 0.5) -> float:
    """Element-presence accuracy pooled over all elements: ``mean(binarize(gt) == binarize(pred))``.

    NTIRE 2025 T2I alignment track (EvalMuse eval.py): predictions and ground truth (mean over
    annotators) are binarised at ``threshold`` (>=), then compared element by element.
    """
    p = as_vector(pred, "element predictions")
    g = as_vector(gt, "element ground truth")
    if p.shape != g.shape:
        raise InputError(f"element predictions ({p.size}) and ground truth ({g.size}) differ in length")
    if p.size == 0:
        raise InputError("element accuracy: no elements")
    return float(np.mean(binarize(p, threshold) == binarize(g, threshold)))


def heatmap_to_mask(heatmap: ArrayLike, *, threshold: float = 40.0, scale: float = 255.0) -> np.ndarray:
    """Binary mask from a heatmap in [0, 1]: ``round(scale * h) > threshold``.

    The default reproduces the EvalMuse-Structure baseline (EvalMuse-Structure evaluate.py):
    ``round(255 h) > 40`` (so 40.4/255 -> 0, 40.6/255 -> 1). Rounding is half-to-even as numpy.
    """
    h = np.asarray(heatmap, dtype=np.float64)
    return (np.round(h * scale) > threshold).astype(np.uint8)


def binary_mask(mask: ArrayLike, *, heatmap_threshold: float = 40.0) -> np.ndarray:
    """0/1 mask from a 0/1 or 0/255 mask (``> 0``) or from a float heatmap in [0, 1]
    (:func:`heatmap_to_mask`): a float map with any value other than 0 and 1 is a heatmap."""
    m = np.asarray(mask)
    if m.dtype.kind == "f" and not np.isin(m, (0.0, 1.0)).all():
        return heatmap_to_mask(m, threshold=heatmap_threshold)
    return (m > 0).astype(np.uint8)


@dataclass(frozen=True)
class MaskCounts:
    """Pixel counts of one predicted mask against one ground-truth mask."""

    tp: int
    fp: int
    fn: int


def mask_counts(pred_mask: ArrayLike, gt_mask: ArrayLike) -> MaskCounts:
    """True/false positives and false negatives of two binary masks of the same shape."""
    p = np.asarray(pred_mask).astype(bool)
    g = np.asarray(gt_mask).astype(bool)
    if p.shape != g.shape:
        raise InputError(f"predicted mask shape {p.shape} differs from ground-truth mask shape {g.shape}")
    return MaskCounts(tp=int(np.sum(p & g)), fp=int(np.sum(p & ~g)), fn=int(np.sum(~p & g)))


@dataclass(frozen=True)
class MaskF1:
    """Aggregate precision, recall and F1 of a set of masks (NaN where undefined)."""

    precision: float
    recall: float
    f1: float


MaskAverage = Literal["pooled", "mean_pr", "per_image"]


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _harmonic(p: np.ndarray, r: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(p + r > 0, 2 * p * r / np.where(p + r > 0, p + r, 1), 0.0)


def _nanmean(values: np.ndarray) -> float:
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def f1_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, average: MaskAverage = "pooled") -> MaskF1:
    """Aggregate F1 from per-image counts (1-D arrays, one entry per image).

    * ``"pooled"`` (default): P = sum TP / sum(TP + FP), R = sum TP / sum(TP + FN), F1 = 2PR/(P + R);
      micro average over all pixels of all images (EvalMuse-Structure evaluate.py).
    * ``"mean_pr"``: image-averaged P and R (NaN entries skipped), F1 of the two means.
    * ``"per_image"``: mean of per-image F1 (NaN skipped); not the challenge rule, offered for analysis.
      An image with no predicted and no GT positives has undefined P and R and is skipped.
    """
    tp, fp, fn = (np.asarray(v, dtype=np.float64) for v in (tp, fp, fn))
    if average == "pooled":
        p = _ratio(tp.sum(), tp.sum() + fp.sum())
        r = _ratio(tp.sum(), tp.sum() + fn.sum())
        return MaskF1(float(p), float(r), float(_harmonic(p, r)) if np.isfinite(p + r) else float("nan"))
    pi = _ratio(tp, tp + fp)
    ri = _ratio(tp, tp + fn)
    if average == "mean_pr":
        p, r = _nanmean(pi), _nanmean(ri)
        return MaskF1(float(p), float(r), float(_harmonic(p, r)) if np.isfinite(p + r) else float("nan"))
    if average == "per_image":
        defined = (tp + fp + fn) > 0
        f1i = np.where(defined, _ratio(2 * tp, 2 * tp + fp + fn), np.nan)
        return MaskF1(_nanmean(pi), _nanmean(ri), _nanmean(f1i))
    raise InputError(f"average must be 'pooled', 'mean_pr' or 'per_image', got {average!r}")


def mask_f1(
    pred_masks: list[ArrayLike],
    gt_masks: list[ArrayLike],
    *,
    average: MaskAverage = "pooled",
) -> MaskF1:
    """Binary-mask precision/recall/F1 over a set of images (see :func:`f1_from_counts`).

    Example:
        >>> mask_f1([[[1, 1], [0, 0]]], [[[1, 0], [1, 0]]]).f1
        0.5
    """
    if len(pred_masks) != len(gt_masks):
        raise InputError(f"{len(pred_masks)} predicted masks but {len(gt_masks)} ground-truth masks")
    if not pred_masks:
        raise InputError("mask F1: no masks")
    counts = [mask_counts(p, g) for p, g in zip(pred_masks, gt_masks, strict=True)]
    tp = np.array([c.tp for c in counts])
    fp = np.array([c.fp for c in counts])
    fn = np.array([c.fn for c in counts])
    return f1_from_counts(tp, fp, fn, average)
