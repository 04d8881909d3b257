"""RealSR-1K two-alternative forced choice (2AFC) benchmark."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from perceptiq.evaluation import stats
from perceptiq.evaluation.protocols._base import PROTOCOLS, PairData, Protocol, _check_count
from perceptiq.evaluation.stats import TieRule

__all__ = ["RealSR2AFC"]


@PROTOCOLS.register("realsr-2afc")
@dataclass(frozen=True)
class RealSR2AFC(Protocol):
    """RealSR-1K 2AFC benchmark (Chen et al., Learning from Model Rankings, 2025): mean over human-voted
    pairs of ``p q + (1 - p)(1 - q)``.

    p = fraction of subjects preferring the first image, q = 1 if the model scores it higher.
    ``tie="half"`` (default) counts a tie in the model's scores as q = 0.5; ``tie="second"`` follows
    the released code (strict ``>``, a tie picks the second image). Also reports the human ceiling,
    the mean of max(p, 1 - p): the best 2AFC score any model can reach on these pairs.
    """

    name: ClassVar[str] = "realsr-2afc"
    description: ClassVar[str] = "RealSR 2AFC: mean of p q + (1 - p)(1 - q) over human-voted pairs"
    source: ClassVar[str] = (
        "Chen et al., Learning from Model Rankings, 2025; cschenjunlin/SR-IQA-SMC25 liqe_test_csv.py"
    )
    data_kind: ClassVar[type] = PairData
    tie: TieRule = "half"

    def main(self, values):
        return values["two_afc"]

    def _per_pair(self, data: PairData) -> dict[str, np.ndarray]:
        q = stats.preference(data.score_first, data.score_second, tie=self.tie)
        p = stats.as_vector(data.p_first, "human preference fractions")
        return {"two_afc": stats.two_afc_scores(p, q), "human_ceiling": np.maximum(p, 1 - p)}

    def check(self, data):
        _check_count(data)  # no correlation here: constant scores or votes are valid data

    def statistics(self, data):
        return {k: float(v.mean()) for k, v in self._per_pair(data).items()}

    def replicates(self, data, w, starts=None):
        total = w.sum(axis=1)
        return {k: (w @ v) / total for k, v in self._per_pair(data).items()}
