"""Evaluation reports: a JSON summary and a scatter plot of predictions against MOS.

The plot follows the ISRG-Q challenge report's Figure 2: one point per image, the fitted curve
drawn over the prediction range, the statistics in the title. The curve is what the reported PLCC
measures: the protocol's PLCC mapping when it has one, otherwise the least-squares line (raw
Pearson's r is the correlation with that line). When a bootstrap ran, a band shows the pointwise
percentile interval of the curve refitted to each resample. For 2AFC pairs the plot shows the human
preference for the first image against the model's score difference.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from perceptiq.errors import DataFileError, FitWarning
from perceptiq.evaluation.bootstrap import iter_resample_counts
from perceptiq.evaluation.fitting import FittedMapping, fit_mapping_or_fallback, mapped_predictions_batch
from perceptiq.evaluation.protocols import EvaluationResult, PairData

if TYPE_CHECKING:
    from perceptiq.ranking.paired import PairedComparisonResult

__all__ = [
    "write_json", "plotted_curve", "curve_band", "scatter_plot", "pair_plot", "ranking_plot", "write_report",
]  # fmt: skip

_MODEL_NAMES = {"thurstone": "Thurstone Case V", "bt": "Bradley-Terry"}
_MAX_LABELLED = 40  # beyond this many items the ranking plot shows points by rank instead of labelled bars


def write_json(payload: dict[str, object], path: str | Path) -> Path:
    """Write ``payload`` as indented JSON atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def _title(result: EvaluationResult) -> str:
    shown = [k for k in ("main", "srcc", "plcc", "krcc", "acc", "f1", "two_afc") if k in result.statistics]
    parts = [f"{k.upper()} {result.statistics[k]:.4f}" for k in shown]
    return f"{result.protocol} (n={result.n})\n" + ", ".join(parts)


def plotted_curve(
    pred: np.ndarray, mos: np.ndarray, result: EvaluationResult, mapping: FittedMapping | None = None
) -> FittedMapping | None:
    """The curve drawn over the scatter: the PLCC mapping of ``result``, else the least-squares line."""
    mapping = mapping or result.mapping
    if mapping is None and np.ptp(pred) > 0 and np.ptp(mos) > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FitWarning)
            mapping = fit_mapping_or_fallback(pred, mos, "linear")
    return mapping


def curve_band(
    pred: np.ndarray,
    mos: np.ndarray,
    mapping: FittedMapping,
    grid: np.ndarray,
    n_resamples: int,
    seed: int | None,
    confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise percentile band of ``mapping`` refitted to bootstrap resamples, evaluated on ``grid``.

    The grid points join the data with zero weight in every resample (they do not move the fits), so
    one batched fit gives every resample's curve at them; the resamples are those of the protocol's
    bootstrap with the same seed.
    """
    n = pred.size
    x = np.concatenate([pred, grid])
    y = np.concatenate([mos, np.full(grid.size, float(np.mean(mos)))])
    alpha = (1.0 - confidence) / 2.0
    curves = []
    for counts in iter_resample_counts(n, n_resamples, seed):
        padded = np.hstack([counts, np.zeros((counts.shape[0], grid.size), dtype=counts.dtype)])
        curves.append(mapped_predictions_batch(x, y, padded, mapping.kind, start=mapping)[:, n:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (constant resamples only)
        low, high = np.nanquantile(np.concatenate(curves), [alpha, 1.0 - alpha], axis=0)
    return low, high


def _save(fig, path: str | Path) -> Path:  # noqa: ANN001 - matplotlib figure
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _figure():  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(5.5, 4.5), dpi=120)


def scatter_plot(
    pred: np.ndarray,
    mos: np.ndarray,
    result: EvaluationResult,
    path: str | Path,
    *,
    mapping: FittedMapping | None = None,
    bootstrap: tuple[int, int | None] | None = None,
) -> Path:
    """Scatter of prediction (x) against MOS (y) with the fitted curve, saved as PNG.

    ``bootstrap`` = (resamples, seed) adds the curve's percentile band at the result's confidence.
    """
    pred = np.asarray(pred, dtype=np.float64)
    mos = np.asarray(mos, dtype=np.float64)
    mapping = plotted_curve(pred, mos, result, mapping)
    fig, ax = _figure()
    ax.scatter(pred, mos, s=10, alpha=0.6, edgecolors="none", label="images")
    if mapping is not None:
        grid = np.linspace(pred.min(), pred.max(), 256)
        label = "least-squares line (raw PLCC)" if mapping.kind == "linear" else f"fitted {mapping.kind}"
        if bootstrap is not None and bootstrap[0] > 0:
            confidence = next(iter(result.intervals.values())).confidence if result.intervals else 0.95
            low, high = curve_band(pred, mos, mapping, grid, bootstrap[0], bootstrap[1], confidence)
            ax.fill_between(
                grid, low, high, color="C3", alpha=0.2, lw=0, label=f"{confidence:.0%} bootstrap band"
            )
        ax.plot(grid, mapping(grid), color="C3", lw=2, label=label)
    ax.set_xlabel("prediction")
    ax.set_ylabel("MOS")
    ax.set_title(_title(result), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return _save(fig, path)


def pair_plot(data: PairData, result: EvaluationResult, path: str | Path) -> Path:
    """2AFC pairs: human preference for the first image (y) against the model's score difference (x).

    Pairs in the upper-right and lower-left quadrants are those where model and majority agree.
    """
    fig, ax = _figure()
    diff = np.asarray(data.score_first, dtype=np.float64) - np.asarray(data.score_second, dtype=np.float64)
    ax.scatter(diff, data.p_first, s=10, alpha=0.6, edgecolors="none", label="pairs")
    ax.axvline(0.0, color="0.4", lw=1)
    ax.axhline(0.5, color="0.4", lw=1)
    ax.set_xlabel("model score, first - second image")
    ax.set_ylabel("fraction of votes for the first image")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title(_title(result), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return _save(fig, path)


def ranking_plot(result: PairedComparisonResult, path: str | Path) -> Path:
    """Scores best first with interval error bars, as in Chen et al., Learning from Model Rankings, 2025,
    Fig. 5."""
    from matplotlib.figure import Figure

    order = result.ranking
    scores = result.scores[order]
    errors = [scores - result.ci_low[order], result.ci_high[order] - scores]
    fig = Figure(figsize=(min(12.0, max(4.0, 0.55 * len(order) + 1.5)), 4.0), layout="constrained")
    ax = fig.add_subplot()
    x = range(1, len(order) + 1)
    if len(order) <= _MAX_LABELLED:
        ax.bar(x, scores, yerr=errors, capsize=3, color="tab:blue", ecolor="black")
        ax.set_xticks(x, [result.items[i] for i in order], rotation=45, ha="right")
    else:
        ax.errorbar(x, scores, yerr=errors, fmt=".", markersize=2, elinewidth=0.5, color="tab:blue")
        ax.set_xlabel("rank")
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_ylabel(f"{_MODEL_NAMES[result.model]} score")
    ax.set_title(f"Global ranking ({100 * result.level:g}% CI, {result.ci_method})")
    try:
        fig.savefig(path, dpi=150)
    except OSError as err:
        raise DataFileError(path, f"cannot write plot ({err.strerror or err})") from None
    return Path(path)


def write_report(
    result: EvaluationResult,
    out_dir: str | Path,
    *,
    pred: np.ndarray | None = None,
    mos: np.ndarray | None = None,
    pairs: PairData | None = None,
    inputs: dict[str, str] | None = None,
    bootstrap: tuple[int, int | None] | None = None,
) -> dict[str, Path]:
    """Write ``summary.json`` and ``scatter.png`` into ``out_dir``.

    The plot is prediction against MOS when per-item scores are given (with the bootstrap band when
    ``bootstrap`` = (resamples, seed)), or the 2AFC pair plot when ``pairs`` are.
    """
    out_dir = Path(out_dir)
    payload = result.as_dict()
    if inputs:
        payload["inputs"] = inputs
    written = {"summary": write_json(payload, out_dir / "summary.json")}
    if pred is not None and mos is not None:
        written["scatter"] = scatter_plot(pred, mos, result, out_dir / "scatter.png", bootstrap=bootstrap)
    elif pairs is not None:
        written["scatter"] = pair_plot(pairs, result, out_dir / "scatter.png")
    return written
