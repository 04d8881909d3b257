"""Every correlation statistic, for any dataset: the ``generic`` protocol."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from perceptiq.errors import FitWarning
from perceptiq.evaluation import stats
from perceptiq.evaluation.bootstrap import weighted_kendall, weighted_pearson, weighted_spearman
from perceptiq.evaluation.fitting import fit_mapping_or_fallback
from perceptiq.evaluation.protocols._base import (
    PROTOCOLS,
    Protocol,
    _check_mapping,
    _fitted_plcc_replicates,
)

__all__ = ["Generic"]


@PROTOCOLS.register("generic")
@dataclass(frozen=True)
class Generic(Protocol):
    """Every correlation statistic: SRCC, KRCC (tau-b), PLCC raw and after each mapping, RMSE, outlier ratio.

    Attributes:
        mappings: mappings for which PLCC and RMSE are reported (``plcc_<mapping>``, ``rmse_<mapping>``).
        outlier_mapping: mapping used by the outlier ratio (needs MOS standard deviations).
    """

    name: ClassVar[str] = "generic"
    description: ClassVar[str] = "all statistics: SRCC, KRCC, PLCC/RMSE raw and after nonlinear mappings"
    source: ClassVar[str] = "VQEG FR-TV Phase II final report (2003); scipy.stats"
    mappings: tuple[str, ...] = ("logistic4", "logistic5", "poly3_monotonic")
    outlier_mapping: str = "logistic4"

    def __post_init__(self) -> None:
        for m in (*self.mappings, self.outlier_mapping):
            _check_mapping(m)

    def _point(self, data):
        x, y = data.pred, data.mos
        values = {
            "srcc": stats.srcc(x, y),
            "krcc": stats.krcc(x, y),
            "plcc": stats.plcc(x, y),
            "rmse": stats.rmse(x, y),
        }
        fits = {}
        for m in self.mappings:
            fitted = fit_mapping_or_fallback(x, y, m) if np.ptp(x) > 0 and np.ptp(y) > 0 else None
            fits[m] = fitted
            yhat = fitted(x) if fitted is not None else None
            values[f"plcc_{m}"] = stats.fitted_plcc(x, y, fitted, m)
            values[f"rmse_{m}"] = (
                float(np.sqrt(np.mean((yhat - y) ** 2))) if yhat is not None else float("nan")
            )
        if data.mos_std is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FitWarning)
                values["outlier_ratio"] = stats.outlier_ratio(
                    x, y, data.mos_std, mapping=self.outlier_mapping
                )
        return values, fits

    def statistics(self, data):
        return self._point(data)[0]

    def fitted_mappings(self):
        return tuple(self.mappings)

    def replicates(self, data, w, starts=None):
        x, y = data.pred, data.mos
        reps = {"srcc": weighted_spearman(x, y, w), "plcc": weighted_pearson(x, y, w)}
        reps["krcc"] = weighted_kendall(x, y, w)
        reps["rmse"] = np.sqrt((w @ (x - y) ** 2) / w.sum(axis=1))
        for m in self.mappings:
            reps[f"plcc_{m}"] = _fitted_plcc_replicates(data, w, m, starts)
        return reps
