"""Is model A better than model B on the same items? Paired bootstrap and Williams' test.

Both models are evaluated on identical bootstrap resamples (same seed, same items in the same
order), so the bootstrap distribution of the difference accounts for their correlation. For SRCC
and raw PLCC, Williams' t test of dependent correlations sharing the MOS variable is reported too
(for SRCC it is applied to the rank correlations, the usual approximation).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field

import numpy as np

from perceptiq.errors import InputError, PerceptiqWarning
from perceptiq.evaluation import stats
from perceptiq.evaluation.bootstrap import (
    PairedDifference,
    paired_difference,
    percentile_interval,
    williams_test,
)
from perceptiq.evaluation.protocols import (
    EvaluationResult,
    PairData,
    Protocol,
    ScoreData,
    small_sample_note,
)

__all__ = ["Comparison", "common_items", "compare_models"]


@dataclass(frozen=True)
class Comparison:
    """Results of A and B, the paired differences (A - B) and Williams' tests by statistic."""

    a: EvaluationResult
    b: EvaluationResult
    differences: dict[str, PairedDifference]
    williams: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "a": self.a.as_dict(),
            "b": self.b.as_dict(),
            "differences": {k: v.as_dict() for k, v in self.differences.items()},
            "williams": self.williams,
        }


Data = ScoreData | PairData


def _item_ids(data: Data) -> np.ndarray:
    return np.asarray(data.pair_ids if isinstance(data, PairData) else data.ids)


def _same_items(a: Data, b: Data) -> None:
    ids_a, ids_b = _item_ids(a), _item_ids(b)
    if len(ids_a) != len(ids_b) or not np.array_equal(ids_a, ids_b):
        raise InputError("models A and B must be evaluated on the same items in the same order")


def _subset(data: Data, ids: list) -> Data:
    """``data`` restricted to the items ``ids``, in that order."""
    index = {k: n for n, k in enumerate(_item_ids(data))}
    rows = np.array([index[k] for k in ids], dtype=np.int64)
    if isinstance(data, PairData):
        return PairData(
            data.pair_ids[rows], data.p_first[rows], data.score_first[rows], data.score_second[rows]
        )
    changes = {"ids": data.ids[rows], "pred": data.pred[rows], "mos": data.mos[rows]}
    if data.mos_std is not None:
        changes["mos_std"] = data.mos_std[rows]
    for name in ("element_pred", "element_gt", "pred_masks", "gt_masks"):
        if hasattr(data, name):
            changes[name] = tuple(getattr(data, name)[r] for r in rows)
    return dataclasses.replace(data, **changes)


def common_items(
    a: Data, b: Data, *, allow_missing: bool = False, names: tuple[str, str] = ("A", "B")
) -> tuple[Data, Data]:
    """``a`` and ``b`` on the same items in the same order (``a``'s), as :func:`compare_models` needs.

    Raises:
        InputError: some item is in only one of them and not ``allow_missing``; ``names`` are the
            names of ``a`` and ``b`` in the message (e.g. their files).
    """
    ids_a, ids_b = _item_ids(a), _item_ids(b)
    if len(ids_a) == len(ids_b) and np.array_equal(ids_a, ids_b):
        return a, b
    if not allow_missing:
        missing = sorted(set(map(str, ids_a)) ^ set(map(str, ids_b)))
        raise InputError(
            f"{len(missing)} item(s) are scored by only one of {names[0]} and {names[1]}, e.g. {missing[:5]}"
        )
    in_b = set(ids_b)
    common = [i for i in ids_a if i in in_b]
    return _subset(a, common), _subset(b, common)


def _with_intervals(
    result: EvaluationResult, reps: dict[str, np.ndarray], confidence: float, note: str | None
) -> EvaluationResult:
    intervals = {
        k: percentile_interval(result.statistics[k], r, confidence)
        for k, r in reps.items()
        if k in result.statistics
    }
    notes = (*result.warnings, note) if note else result.warnings
    return dataclasses.replace(result, intervals=intervals, warnings=notes)


def compare_models(
    protocol: Protocol,
    data_a: ScoreData | PairData,
    data_b: ScoreData | PairData,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> Comparison:
    """Evaluate A and B with ``protocol`` and test every statistic's difference by paired bootstrap."""
    if n_resamples < 1:
        raise InputError("a paired comparison needs at least one bootstrap resample")
    _same_items(data_a, data_b)
    small = small_sample_note(data_a.n)
    if small:
        warnings.warn(small, PerceptiqWarning, stacklevel=2)
    reps_a = protocol.bootstrap_replicates(data_a, n_resamples, seed)
    reps_b = protocol.bootstrap_replicates(data_b, n_resamples, seed)
    result_a = _with_intervals(protocol.evaluate(data_a), reps_a, confidence, small)
    result_b = _with_intervals(protocol.evaluate(data_b), reps_b, confidence, small)
    differences = {
        k: paired_difference(
            k, result_a.statistics[k], result_b.statistics[k], reps_a[k], reps_b[k], confidence
        )
        for k in reps_a
        if k in result_a.statistics and k in reps_b
    }
    williams: dict[str, dict[str, float]] = {}
    if isinstance(data_a, ScoreData) and data_a.n > 3:
        x_a, x_b, y = data_a.pred, data_b.pred, data_a.mos
        pairs = {"srcc": (stats.average_ranks(x_a), stats.average_ranks(x_b), stats.average_ranks(y))}
        if getattr(protocol, "plcc_mapping", "none") == "none":
            pairs["plcc"] = (x_a, x_b, y)
        for name, (u, v, t) in pairs.items():
            if min(np.ptp(u), np.ptp(v), np.ptp(t)) == 0:
                continue
            t_stat, p = williams_test(stats.pearson(u, t), stats.pearson(v, t), stats.pearson(u, v), data_a.n)
            williams[name] = {"t": t_stat, "df": data_a.n - 3, "p_value": p}
    return Comparison(result_a, result_b, differences, williams)
