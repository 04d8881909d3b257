"""NTIRE 2025 T2I quality assessment, track 2 (structural distortions, EvalMuse-Structure)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from PIL import Image

from perceptiq.errors import InputError
from perceptiq.evaluation import stats
from perceptiq.evaluation.bootstrap import expand
from perceptiq.evaluation.protocols._base import (
    PROTOCOLS,
    Protocol,
    StructureData,
    _check_mapping,
    _srcc_plcc,
    _srcc_plcc_replicates,
)
from perceptiq.evaluation.stats import MaskAverage

__all__ = ["NTIRE25T2IStructure"]


def _per_resample(fn: Callable[[np.ndarray], float], w: np.ndarray) -> np.ndarray:
    out = np.empty(w.shape[0])
    for r in range(w.shape[0]):
        out[r] = fn(expand(w[r]))
    return out


def _resize_nearest(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    img = Image.fromarray(mask.astype(np.uint8) * 255)
    return (np.asarray(img.resize((shape[1], shape[0]), Image.Resampling.NEAREST)) > 0).astype(np.uint8)


@PROTOCOLS.register("ntire25-t2i-structure")
@dataclass(frozen=True)
class NTIRE25T2IStructure(Protocol):
    """NTIRE 2025 T2I track 2 (EvalMuse-Structure): 0.7 F1 + 0.15 (SRCC + PLCC) (Han et al., NTIRE 2025 T2I
    QA report, eq. 2).

    F1 = 2PR/(P + R) of aggregate precision and recall (the baseline README's numbers prove it is not
    a mean of per-image F1): ``f1_average="pooled"`` (default, pixel counts summed over the test set)
    or ``"mean_pr"`` (image-averaged P and R). PLCC raw by default (the baseline's ``np.corrcoef``).
    Float heatmaps in [0, 1] are binarised by the baseline's ``round(255 h) > 40``
    (:func:`perceptiq.evaluation.stats.binary_mask`); a predicted mask whose size differs from its
    ground truth is resized with nearest neighbour to the ground truth's size (the organisers'
    comparison resolution is unknown; EvalMuse-Structure data_process.py).
    """

    name: ClassVar[str] = "ntire25-t2i-structure"
    description: ClassVar[str] = "NTIRE 2025 T2I structure: 0.7 F1 + 0.15 (SRCC + PLCC), pooled-pixel F1"
    source: ClassVar[str] = (
        "Han et al., NTIRE 2025 T2I QA report, eq. 2; DYEvaLab/EvalMuse-Structure README.md, evaluate.py"
    )
    data_kind: ClassVar[type] = StructureData
    heatmap_threshold: ClassVar[float] = 40.0
    f1_average: MaskAverage = "pooled"
    plcc_mapping: str = "none"

    def __post_init__(self) -> None:
        _check_mapping(self.plcc_mapping)
        if self.f1_average not in ("pooled", "mean_pr", "per_image"):
            raise InputError(
                f"f1_average must be 'pooled', 'mean_pr' or 'per_image', got {self.f1_average!r}"
            )

    def main(self, values):
        return 0.7 * values["f1"] + 0.15 * (values["srcc"] + values["plcc"])

    def masks(self, data: StructureData) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The binary predicted masks (at their ground truth's size) and ground-truth masks of ``data``."""
        pred, gt = [], []
        for p, g in zip(data.pred_masks, data.gt_masks, strict=True):
            pm = stats.binary_mask(p, heatmap_threshold=self.heatmap_threshold)
            gm = stats.binary_mask(g, heatmap_threshold=self.heatmap_threshold)
            pred.append(pm if pm.shape == gm.shape else _resize_nearest(pm, gm.shape))
            gt.append(gm)
        return pred, gt

    def _counts(self, data: StructureData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        counts = [stats.mask_counts(p, g) for p, g in zip(*self.masks(data), strict=True)]
        return tuple(np.array([getattr(c, k) for c in counts], dtype=np.float64) for k in ("tp", "fp", "fn"))

    def _point(self, data):
        tp, fp, fn = self._counts(data)
        f1 = stats.f1_from_counts(tp, fp, fn, self.f1_average)
        values, fits = _srcc_plcc(data, self.plcc_mapping)
        return {**values, "f1": f1.f1, "precision": f1.precision, "recall": f1.recall}, fits

    def statistics(self, data):
        return self._point(data)[0]

    def fitted_mappings(self):
        return () if self.plcc_mapping == "none" else (self.plcc_mapping,)

    def replicates(self, data, w, starts=None):
        tp, fp, fn = self._counts(data)
        if self.f1_average == "pooled":
            stp, sfp, sfn = w @ tp, w @ fp, w @ fn
            with np.errstate(invalid="ignore", divide="ignore"):
                p, r = stp / (stp + sfp), stp / (stp + sfn)
                f1 = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
            f1 = np.where(np.isfinite(p + r), f1, np.nan)
        else:
            f1 = _per_resample(lambda i: stats.f1_from_counts(tp[i], fp[i], fn[i], self.f1_average).f1, w)
        return {**_srcc_plcc_replicates(data, w, self.plcc_mapping, starts), "f1": f1}
