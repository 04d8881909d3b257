"""NTIRE 2025 T2I quality assessment, track 1 (image-text alignment, EvalMuse-40K)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from perceptiq.errors import FitWarning, InputError
from perceptiq.evaluation import stats
from perceptiq.evaluation.bootstrap import weighted_spearman
from perceptiq.evaluation.fitting import fit_mapping_or_fallback
from perceptiq.evaluation.protocols._base import (
    PROTOCOLS,
    AlignmentData,
    Protocol,
    _check_mapping,
    _fitted_plcc_replicates,
)

__all__ = ["NTIRE25T2IAlignment"]


@PROTOCOLS.register("ntire25-t2i-alignment")
@dataclass(frozen=True)
class NTIRE25T2IAlignment(Protocol):
    """NTIRE 2025 T2I track 1 (EvalMuse-40K): 0.5 ACC + 0.25 (SRCC + PLCC) (Han et al., NTIRE 2025 T2I QA
    report, eq. 1).

    SRCC on raw overall scores; PLCC after the CodaLab 4-parameter logistic (official, default) or
    ``plcc_mapping="poly3"`` (the report's third-order polynomial); the other variant is always
    reported as ``plcc_alt``/``main_alt``. ACC pools all elements of all images after binarising
    predictions and GT at ``element_threshold`` (>=; EvalMuse ``eval.py``).
    """

    name: ClassVar[str] = "ntire25-t2i-alignment"
    description: ClassVar[str] = "NTIRE 2025 T2I alignment: 0.5 ACC + 0.25 (SRCC + PLCC), logistic-4 PLCC"
    source: ClassVar[str] = (
        "Han et al., NTIRE 2025 T2I QA report, eq. 1; CodaLab 21220 evaluation page; EvalMuse eval.py"
    )
    data_kind: ClassVar[type] = AlignmentData
    plcc_mapping: str = "logistic4"
    element_threshold: float = 0.5

    def __post_init__(self) -> None:
        _check_mapping(self.plcc_mapping)

    @property
    def alt_mapping(self) -> str:
        return "poly3" if self.plcc_mapping != "poly3" else "logistic4"

    def main(self, values):
        return 0.5 * values["acc"] + 0.25 * (values["srcc"] + values["plcc"])

    def _element_correct(self, data: AlignmentData) -> tuple[np.ndarray, np.ndarray]:
        correct = np.array(
            [
                np.sum(stats.binarize(p, self.element_threshold) == stats.binarize(g, self.element_threshold))
                for p, g in zip(data.element_pred, data.element_gt, strict=True)
            ],
            dtype=np.float64,
        )
        counts = np.array([np.size(p) for p in data.element_pred], dtype=np.float64)
        if counts.sum() == 0:
            raise InputError("alignment protocol: no elements to score")
        return correct, counts

    def _point(self, data):
        mapping = fit_mapping_or_fallback(data.pred, data.mos, self.plcc_mapping)
        correct, counts = self._element_correct(data)
        values = {
            "srcc": stats.srcc(data.pred, data.mos),
            "plcc": stats.fitted_plcc(data.pred, data.mos, mapping, self.plcc_mapping),
            "acc": float(correct.sum() / counts.sum()),
            "plcc_raw": stats.plcc(data.pred, data.mos),
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FitWarning)
            values["plcc_alt"] = stats.plcc(data.pred, data.mos, mapping=self.alt_mapping)
        values["main_alt"] = 0.5 * values["acc"] + 0.25 * (values["srcc"] + values["plcc_alt"])
        return values, {self.plcc_mapping: mapping}

    def statistics(self, data):
        return self._point(data)[0]

    def fitted_mappings(self):
        return (self.plcc_mapping,)

    def replicates(self, data, w, starts=None):
        correct, counts = self._element_correct(data)
        return {
            "srcc": weighted_spearman(data.pred, data.mos, w),
            "plcc": _fitted_plcc_replicates(data, w, self.plcc_mapping, starts),
            "acc": (w @ correct) / (w @ counts),
        }
