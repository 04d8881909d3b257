"""The parts every protocol shares: data containers, score direction, results, the ``Protocol`` base
class, the SRCC/PLCC ``CorrelationProtocol`` and the registry.

Each challenge's protocol lives in its own module of this package and registers itself on import.
"""

from __future__ import annotations

import abc
import dataclasses
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import ClassVar

import numpy as np

from perceptiq._registry import Registry
from perceptiq.errors import FitWarning, InputError, PerceptiqWarning, UndefinedStatisticError
from perceptiq.evaluation import stats
from perceptiq.evaluation.bootstrap import (
    ConfidenceInterval,
    iter_resample_counts,
    percentile_interval,
    weighted_pearson,
    weighted_pearson_rows,
    weighted_spearman,
)
from perceptiq.evaluation.fitting import (
    MAPPINGS,
    MIN_ITEMS,
    FittedMapping,
    Mapping,
    fit_mapping_or_fallback,
    mapped_predictions_batch,
)

__all__ = [
    "Direction",
    "score_direction",
    "orient",
    "MIN_BOOTSTRAP_ITEMS",
    "ScoreData",
    "AlignmentData",
    "StructureData",
    "PairData",
    "EvaluationResult",
    "Protocol",
    "CorrelationProtocol",
    "PROTOCOLS",
    "create_protocol",
    "list_protocols",
    "small_sample_note",
]


# ----------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class ScoreData:
    """One predicted score and one MOS per item (optionally the MOS standard deviation)."""

    ids: np.ndarray
    pred: np.ndarray
    mos: np.ndarray
    mos_std: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "pred", stats.as_vector(self.pred, "predictions"))
        object.__setattr__(self, "mos", stats.as_vector(self.mos, "ground truth"))
        if self.pred.size != self.mos.size or len(self.ids) != self.pred.size:
            raise InputError("ids, predictions and ground truth differ in length")
        if self.mos_std is not None:
            object.__setattr__(self, "mos_std", stats.as_vector(self.mos_std, "MOS standard deviations"))

    @property
    def n(self) -> int:
        return int(self.pred.size)


@dataclass(frozen=True)
class AlignmentData(ScoreData):
    """Overall alignment scores plus per-image element presence values (T2I alignment track).

    ``element_pred[i]`` and ``element_gt[i]`` hold the values of image i's elements in one order.
    """

    element_pred: tuple[np.ndarray, ...] = ()
    element_gt: tuple[np.ndarray, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.element_pred) != self.n or len(self.element_gt) != self.n:
            raise InputError("element lists must have one entry per image")
        for i, (p, g) in enumerate(zip(self.element_pred, self.element_gt, strict=True)):
            if np.size(p) != np.size(g):
                raise InputError(
                    f"image {self.ids[i]!r}: {np.size(p)} predicted but {np.size(g)} GT elements"
                )


@dataclass(frozen=True)
class StructureData(ScoreData):
    """Structure scores plus distortion maps per image (T2I structure track), as the files hold them.

    A map is a binary mask (0/1 or 0/255) or a float heatmap in [0, 1]; a predicted map may differ
    in size from its ground truth. The structure protocol binarises and resizes them.
    """

    pred_masks: tuple[np.ndarray, ...] = ()
    gt_masks: tuple[np.ndarray, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.pred_masks) != self.n or len(self.gt_masks) != self.n:
            raise InputError("mask lists must have one entry per image")


@dataclass(frozen=True)
class PairData:
    """Human-voted pairs: fraction of votes for the first item and the model's scores of both items."""

    pair_ids: np.ndarray
    p_first: np.ndarray
    score_first: np.ndarray
    score_second: np.ndarray

    @property
    def n(self) -> int:
        return int(np.size(self.p_first))


# ------------------------------------------------------------------------------------ direction


@dataclass(frozen=True)
class Direction:
    """Whether a prediction file's scores are lower-is-better, where that came from, and the note shown."""

    lower_is_better: bool
    source: str

    @property
    def note(self) -> str:
        if self.lower_is_better:
            return f"direction: lower is better ({self.source}); predictions negated"
        return f"direction: higher is better ({self.source})"

    def as_dict(self) -> dict[str, object]:
        return {
            "lower_is_better": self.lower_is_better,
            "source": self.source,
            "negated": self.lower_is_better,
        }


def score_direction(scorer: str | None, lower_is_better: bool = False) -> Direction:
    """Direction of scores from the user's flag and the scorer that produced them.

    ``scorer`` is a ``perceptiq score`` output's ``scorer`` column: a registered metric has its own
    ``lower_is_better`` (NIQE, BRISQUE, GMSD are; PSNR, SSIM are not); any other name is a learned
    model, which predicts quality (higher is better). Correlation protocols assume higher is better,
    so lower-is-better scores are negated before evaluation. A flag that contradicts a metric's own
    direction is an error.
    """
    if scorer is not None:
        from perceptiq.metrics import METRICS  # only for a score file: metrics import torch

    if scorer is not None and scorer in METRICS:
        metric_lower = bool(getattr(METRICS.get(scorer), "lower_is_better", False))
        if lower_is_better and not metric_lower:
            raise InputError(
                f"--lower-is-better contradicts the scorer column {scorer!r}: that metric is higher-is-better"
            )
        return Direction(metric_lower, f"from scorer column {scorer!r}")
    if lower_is_better:
        return Direction(True, "--lower-is-better")
    if scorer is not None:
        return Direction(False, f"from scorer column {scorer!r}, a learned model")
    return Direction(False, "default; pass --lower-is-better for scores such as NIQE or BRISQUE")


def orient(data: ScoreData | PairData, direction: Direction) -> ScoreData | PairData:
    """``data`` with predictions negated when they are lower-is-better, so higher always means better."""
    if not direction.lower_is_better:
        return data
    if isinstance(data, PairData):
        return dataclasses.replace(data, score_first=-data.score_first, score_second=-data.score_second)
    return dataclasses.replace(data, pred=-data.pred)


# -------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class EvaluationResult:
    """Outcome of one protocol on one set of predictions.

    Attributes:
        protocol: protocol name; ``options`` its settings.
        n: number of items (images or pairs) evaluated.
        score: the challenge's main score (None for ``generic``).
        statistics: every statistic of the protocol by name (``main`` included when defined).
        intervals: bootstrap confidence intervals by statistic name (empty without bootstrap).
        warnings: human-readable notes (decreasing fit, fallbacks, undefined statistics).
        mapping: the fitted mapping used for PLCC (None for raw PLCC).
    """

    protocol: str
    n: int
    score: float | None
    statistics: dict[str, float]
    intervals: dict[str, ConfidenceInterval] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    options: dict[str, object] = field(default_factory=dict)
    mapping: FittedMapping | None = None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready summary (NaN becomes None)."""

        def clean(v: float | None) -> float | None:
            return None if v is None or not np.isfinite(v) else float(v)

        return {
            "protocol": self.protocol,
            "n": self.n,
            "score": clean(self.score),
            "statistics": {k: clean(v) for k, v in self.statistics.items()},
            "intervals": {
                k: {kk: clean(vv) if isinstance(vv, float) else vv for kk, vv in ci.as_dict().items()}
                for k, ci in self.intervals.items()
            },
            "warnings": list(self.warnings),
            "options": dict(self.options),
            "mapping": None
            if self.mapping is None
            else {
                "kind": self.mapping.kind,
                "params": list(self.mapping.params),
                "increasing": self.mapping.increasing,
            },
        }


# ------------------------------------------------------------------------------------ protocols


MIN_BOOTSTRAP_ITEMS = 10
"""Below this many items a bootstrap CI is flagged: resamples of so few items repeat one or two of
them, so the percentile interval is degenerate (n = 2 gives [1, 1] for any correlation)."""

Replicates = dict[str, np.ndarray]
Starts = dict[str, FittedMapping | None]


@dataclass(frozen=True)
class Protocol(abc.ABC):
    """Base class: subclasses define :meth:`statistics` and :meth:`replicates`.

    ``statistics(data)`` gives the point estimates; ``replicates(data, w, starts)`` the same statistics
    on the bootstrap resamples given by the rows of the count matrix ``w`` (R, n), where ``starts``
    holds the mappings fitted to all items (:meth:`start_fits`), from which the resamples' fits
    start. The main score is the protocol's weighted sum of statistics, applied to point estimates
    and replicates alike.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    source: ClassVar[str] = ""
    data_kind: ClassVar[type] = ScoreData

    def main(self, values: dict[str, np.ndarray | float]) -> np.ndarray | float | None:
        """The challenge's main score from statistics (None when the protocol has none)."""
        return None

    @abc.abstractmethod
    def statistics(self, data: ScoreData) -> dict[str, float]:
        """Point estimates of every statistic of the protocol (``main`` excluded)."""

    @abc.abstractmethod
    def replicates(self, data: ScoreData, w: np.ndarray, starts: Starts | None = None) -> Replicates:
        """Each statistic on the resamples given by the rows of the count matrix ``w`` (R, n)."""

    def fitted_mappings(self) -> tuple[str, ...]:
        """The nonlinear mappings whose PLCC the protocol reports (each refitted on every resample)."""
        return ()

    def start_fits(self, data: ScoreData | PairData) -> Starts:
        """Each of :meth:`fitted_mappings` fitted to all items: the warm starts of the resamples' fits."""
        out: Starts = {}
        for m in self.fitted_mappings():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FitWarning)
                ok = np.ptp(data.pred) > 0 and np.ptp(data.mos) > 0
                out[m] = fit_mapping_or_fallback(data.pred, data.mos, m) if ok else None
        return out

    def options(self) -> dict[str, object]:
        return asdict(self)

    def check(self, data: ScoreData | PairData) -> None:
        """Refuse data on which the protocol's statistics are undefined: fewer than 2 items, constant
        predictions or MOS, fewer items than the PLCC mapping has parameters (``fitting.MIN_ITEMS``).

        :meth:`evaluate` gives NaN for such statistics instead; this is the check before it.

        Raises:
            UndefinedStatisticError: ``side`` says which input is at fault.
        """
        _check_count(data)
        if np.ptp(data.pred) == 0:
            raise UndefinedStatisticError(
                f"all {data.n} predictions equal {data.pred[0]:g}: correlations are undefined",
                side="predictions",
            )
        if np.ptp(data.mos) == 0:
            raise UndefinedStatisticError(
                f"all {data.n} ground-truth values equal {data.mos[0]:g}: correlations are undefined",
                side="ground truth",
            )
        mapping = getattr(self, "plcc_mapping", "none")
        if data.n < MIN_ITEMS.get(mapping, 2):
            raise UndefinedStatisticError(
                f"only {data.n} items: the {mapping} fit of PLCC needs at least {MIN_ITEMS[mapping]}",
                side="predictions",
            )

    def evaluate(
        self,
        data: ScoreData | PairData,
        *,
        bootstrap: int = 0,
        confidence: float = 0.95,
        seed: int | None = 0,
    ) -> EvaluationResult:
        """Evaluate ``data``; with ``bootstrap`` > 0 add percentile CIs from that many resamples."""
        if not isinstance(data, self.data_kind):
            raise InputError(
                f"protocol {self.name!r} needs {self.data_kind.__name__}, got {type(data).__name__}"
            )
        if data.n < 2:
            raise UndefinedStatisticError(f"protocol {self.name!r}: needs at least 2 items, got {data.n}")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FitWarning)
            values, fits = self._point(data)
        mapping = next((f for f in fits.values() if f is not None), None)
        notes = [str(w.message) for w in caught if issubclass(w.category, FitWarning)]
        main = self.main(values)
        if main is not None:
            values = {"main": float(main), **values}
        notes += [f"{k} is undefined (NaN) on these data" for k, v in values.items() if not np.isfinite(v)]
        intervals: dict[str, ConfidenceInterval] = {}
        if bootstrap > 0:
            small = small_sample_note(data.n)
            if small:
                warnings.warn(small, PerceptiqWarning, stacklevel=2)
                notes.append(small)
            reps = self.bootstrap_replicates(data, bootstrap, seed, starts=fits)
            intervals = {
                k: percentile_interval(values[k], r, confidence) for k, r in reps.items() if k in values
            }
        return EvaluationResult(
            protocol=self.name,
            n=data.n,
            score=None if main is None else float(main),
            statistics=values,
            intervals=intervals,
            warnings=tuple(dict.fromkeys(notes)),
            options=self.options(),
            mapping=mapping,
        )

    def _point(self, data: ScoreData) -> tuple[dict[str, float], Starts]:
        """Point estimates and the mappings fitted to all items for them, by name (None: undefined)."""
        return self.statistics(data), {}

    def bootstrap_replicates(
        self,
        data: ScoreData | PairData,
        n_resamples: int,
        seed: int | None,
        *,
        workers: int | None = None,
        starts: Starts | None = None,
    ) -> Replicates:
        """Replicates of every statistic (and ``main``) over ``n_resamples`` resamples of the items.

        Resamples are drawn in order from one seeded stream, then chunks are evaluated in ``workers``
        threads (default: the CPU count, at most 4); numpy releases the GIL in the heavy kernels.
        ``starts`` are the mappings already fitted to all items (as :meth:`start_fits` gives them),
        so that a caller holding them does not fit them again.
        """
        workers = workers or min(os.cpu_count() or 1, 4)
        chunks = list(iter_resample_counts(data.n, n_resamples, seed, n_chunks=workers))
        if starts is None or not set(self.fitted_mappings()) <= set(starts):
            starts = self.start_fits(data)

        def run(w: np.ndarray) -> Replicates:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FitWarning)
                reps = self.replicates(data, w, starts)
            main = self.main(reps)
            return {"main": np.asarray(main), **reps} if main is not None else reps

        if workers > 1 and len(chunks) > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                results = list(pool.map(run, chunks))
        else:
            results = [run(w) for w in chunks]
        return {k: np.concatenate([r[k] for r in results]) for k in results[0]}


def _check_count(data: ScoreData | PairData) -> None:
    """Refuse fewer than 2 items (images or pairs): no statistic of a protocol is defined on them."""
    if data.n < 2:
        raise UndefinedStatisticError(
            f"only {data.n} item(s) matched: at least 2 are needed", side="predictions"
        )


def small_sample_note(n: int) -> str | None:
    """The warning for a bootstrap CI on fewer than :data:`MIN_BOOTSTRAP_ITEMS` items, else None."""
    if n >= MIN_BOOTSTRAP_ITEMS:
        return None
    return (
        f"bootstrap intervals on only {n} items (fewer than {MIN_BOOTSTRAP_ITEMS}) mean little: "
        "resamples repeat one or two items, so an interval can collapse to a point such as [1, 1]"
    )


def _fitted_plcc_replicates(
    data: ScoreData, w: np.ndarray, mapping: Mapping, starts: Starts | None
) -> np.ndarray:
    """PLCC after ``mapping`` refitted to every resample (all resamples fitted at once)."""
    start = (starts or {}).get(mapping)
    fitted = mapped_predictions_batch(data.pred, data.mos, w, mapping, start)
    return weighted_pearson_rows(fitted, data.mos, w)


def _srcc_plcc(data: ScoreData, mapping: Mapping) -> tuple[dict[str, float], Starts]:
    """SRCC and PLCC after ``mapping`` (fitted once; "none" = raw Pearson), with the fit by name."""
    srcc = stats.srcc(data.pred, data.mos)
    if mapping == "none":
        return {"srcc": srcc, "plcc": stats.plcc(data.pred, data.mos)}, {}
    fitted = fit_mapping_or_fallback(data.pred, data.mos, mapping)
    return {"srcc": srcc, "plcc": stats.fitted_plcc(data.pred, data.mos, fitted, mapping)}, {mapping: fitted}


def _srcc_plcc_replicates(
    data: ScoreData, w: np.ndarray, mapping: Mapping, starts: Starts | None
) -> Replicates:
    """:func:`_srcc_plcc` on the resamples given by the rows of the count matrix ``w``."""
    if mapping == "none":
        plcc = weighted_pearson(data.pred, data.mos, w)
    else:
        plcc = _fitted_plcc_replicates(data, w, mapping, starts)
    return {"srcc": weighted_spearman(data.pred, data.mos, w), "plcc": plcc}


def _check_mapping(mapping: str) -> None:
    if mapping not in MAPPINGS:
        raise InputError(f"unknown PLCC mapping {mapping!r}; choose from {', '.join(MAPPINGS)}")


@dataclass(frozen=True)
class CorrelationProtocol(Protocol):
    """SRCC and PLCC of predicted scores against MOS, combined as ``w_srcc SRCC + w_plcc PLCC``.

    Attributes:
        plcc_mapping: mapping fitted before PLCC ("none" = raw Pearson).
    """

    plcc_mapping: str = "none"
    srcc_weight: ClassVar[float] = 0.5
    plcc_weight: ClassVar[float] = 0.5

    def __post_init__(self) -> None:
        _check_mapping(self.plcc_mapping)

    def main(self, values):
        return self.srcc_weight * values["srcc"] + self.plcc_weight * values["plcc"]

    def _point(self, data):
        return _srcc_plcc(data, self.plcc_mapping)

    def statistics(self, data):
        return self._point(data)[0]

    def fitted_mappings(self):
        return () if self.plcc_mapping == "none" else (self.plcc_mapping,)

    def replicates(self, data, w, starts=None):
        return _srcc_plcc_replicates(data, w, self.plcc_mapping, starts)


PROTOCOLS: Registry[Protocol] = Registry("protocol")


def create_protocol(name: str, **options: object) -> Protocol:
    """Create the protocol registered as ``name`` with its keyword ``options``.

    Example:
        >>> create_protocol("isrg-q-2025").evaluate(
        ...     ScoreData(np.arange(4), [1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0])).score
        0.8
    """
    return PROTOCOLS.create(name, **options)


def list_protocols() -> list[str]:
    """Names of the registered protocols."""
    return PROTOCOLS.names()
