"""Evaluation reports: a JSON summary and a scatter plot of predictions against MOS.

The plot follows the ISRG-Q challenge report's Figure 2: one point per image, the fitted curve
drawn over the prediction range, the statistics in the title. The curve is the protocol's PLCC
mapping when it has one, otherwise a 4th-order polynomial as in that report.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from perceptiq.errors import FitWarning
from perceptiq.evaluation.fitting import FittedMapping, fit_mapping_or_fallback
from perceptiq.evaluation.protocols import EvaluationResult

__all__ = ["write_json", "scatter_plot", "write_report"]


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


def scatter_plot(
    pred: np.ndarray,
    mos: np.ndarray,
    result: EvaluationResult,
    path: str | Path,
    *,
    mapping: FittedMapping | None = None,
) -> Path:
    """Scatter of prediction (x) against MOS (y) with the fitted curve, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pred = np.asarray(pred, dtype=np.float64)
    mos = np.asarray(mos, dtype=np.float64)
    if mapping is None:
        mapping = result.mapping
    if mapping is None and np.ptp(pred) > 0 and np.ptp(mos) > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FitWarning)
            mapping = fit_mapping_or_fallback(pred, mos, "poly4")
    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=120)
    ax.scatter(pred, mos, s=10, alpha=0.6, edgecolors="none", label="images")
    if mapping is not None:
        grid = np.linspace(pred.min(), pred.max(), 256)
        ax.plot(grid, mapping(grid), color="C3", lw=2, label=f"fitted {mapping.kind}")
    ax.set_xlabel("prediction")
    ax.set_ylabel("MOS")
    ax.set_title(_title(result), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_report(
    result: EvaluationResult,
    out_dir: str | Path,
    *,
    pred: np.ndarray | None = None,
    mos: np.ndarray | None = None,
    inputs: dict[str, str] | None = None,
) -> dict[str, Path]:
    """Write ``summary.json`` (and ``scatter.png`` when per-item scores are given) into ``out_dir``."""
    out_dir = Path(out_dir)
    payload = result.as_dict()
    if inputs:
        payload["inputs"] = inputs
    written = {"summary": write_json(payload, out_dir / "summary.json")}
    if pred is not None and mos is not None:
        written["scatter"] = scatter_plot(pred, mos, result, out_dir / "scatter.png")
    return written
