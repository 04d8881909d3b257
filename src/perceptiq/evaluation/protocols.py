"""Challenge evaluation protocols as named, documented objects.

Each protocol turns matched predictions and ground truth into the challenge's statistics and main
score, exactly as the official evaluation does (each protocol names its sources), with optional
percentile bootstrap confidence intervals that resample *items* (images, or pairs for 2AFC).

=========================  =======================================================  ===============
name                       main score                                               data
=========================  =======================================================  ===============
``isrg-q-2025``            0.6 SRCC + 0.4 PLCC (raw Pearson by default)             ScoreData
``ntire25-t2i-alignment``  0.5 ACC + 0.25 (SRCC + PLCC), PLCC after logistic-4      AlignmentData
``ntire25-t2i-structure``  0.7 F1 + 0.15 (SRCC + PLCC), pooled-pixel F1, raw PLCC   StructureData
``vquala25-fiqa``          (SRCC + PLCC) / 2 (raw Pearson by default)               ScoreData
``realsr-2afc``            mean 2AFC score p q + (1 - p)(1 - q)                     PairData
``generic``                none; every correlation statistic                        ScoreData
=========================  =======================================================  ===============

Create with :func:`create_protocol` (options as keywords, e.g. ``plcc_mapping="poly3"``).
"""

from __future__ import annotations

import abc
import dataclasses
import os
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import ClassVar

import numpy as np

from perceptiq._registry import Registry
from perceptiq.errors import FitWarning, InputError, PerceptiqWarning, UndefinedStatisticError
from perceptiq.evaluation import stats
from perceptiq.evaluation.bootstrap import (
    ConfidenceInterval,
    expand,
    iter_resample_counts,
    percentile_interval,
    weighted_kendall,
    weighted_pearson,
    weighted_pearson_rows,
    weighted_spearman,
)
from perceptiq.evaluation.fitting import (
    MAPPINGS,
    FittedMapping,
    Mapping,
    fit_mapping_or_fallback,
    mapped_predictions_batch,
)
from perceptiq.evaluation.stats import MaskAverage, TieRule

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
    "PROTOCOLS",
    "create_protocol",
    "list_protocols",
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
    """Structure scores plus binary distortion masks per image (T2I structure track)."""

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
            values, mapping = self._point(data)
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
            reps = self.bootstrap_replicates(data, bootstrap, seed)
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

    def _point(self, data: ScoreData) -> tuple[dict[str, float], FittedMapping | None]:
        return self.statistics(data), None

    def bootstrap_replicates(
        self, data: ScoreData | PairData, n_resamples: int, seed: int | None, *, workers: int | None = None
    ) -> Replicates:
        """Replicates of every statistic (and ``main``) over ``n_resamples`` resamples of the items.

        Resamples are drawn in order from one seeded stream, then chunks are evaluated in ``workers``
        threads (default: the CPU count, at most 4); numpy releases the GIL in the heavy kernels.
        """
        workers = workers or min(os.cpu_count() or 1, 4)
        chunks = list(iter_resample_counts(data.n, n_resamples, seed, n_chunks=workers))
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


def small_sample_note(n: int) -> str | None:
    """The warning for a bootstrap CI on fewer than :data:`MIN_BOOTSTRAP_ITEMS` items, else None."""
    if n >= MIN_BOOTSTRAP_ITEMS:
        return None
    return (
        f"bootstrap intervals on only {n} items (fewer than {MIN_BOOTSTRAP_ITEMS}) mean little: "
        "resamples repeat one or two items, so an interval can collapse to a point such as [1, 1]"
    )


def _per_resample(fn: Callable[[np.ndarray], float], w: np.ndarray) -> np.ndarray:
    out = np.empty(w.shape[0])
    for r in range(w.shape[0]):
        out[r] = fn(expand(w[r]))
    return out


def _fitted_plcc_replicates(
    data: ScoreData, w: np.ndarray, mapping: Mapping, starts: Starts | None
) -> np.ndarray:
    """PLCC after ``mapping`` refitted to every resample (all resamples fitted at once)."""
    start = (starts or {}).get(mapping)
    fitted = mapped_predictions_batch(data.pred, data.mos, w, mapping, start)
    return weighted_pearson_rows(fitted, data.mos, w)


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
        mapping = None
        if self.plcc_mapping != "none":
            mapping = fit_mapping_or_fallback(data.pred, data.mos, self.plcc_mapping)
        values = {
            "srcc": stats.srcc(data.pred, data.mos),
            "plcc": stats.plcc(data.pred, data.mos, mapping=self.plcc_mapping),
        }
        values.update(self._extra_point(data))
        return values, mapping

    def _extra_point(self, data) -> dict[str, float]:
        return {}

    def statistics(self, data):
        return self._point(data)[0]

    def fitted_mappings(self):
        return () if self.plcc_mapping == "none" else (self.plcc_mapping,)

    def replicates(self, data, w, starts=None):
        reps = {"srcc": weighted_spearman(data.pred, data.mos, w)}
        if self.plcc_mapping == "none":
            reps["plcc"] = weighted_pearson(data.pred, data.mos, w)
        else:
            reps["plcc"] = _fitted_plcc_replicates(data, w, self.plcc_mapping, starts)
        return reps


PROTOCOLS: Registry[Protocol] = Registry("protocol")


@PROTOCOLS.register("isrg-q-2025")
@dataclass(frozen=True)
class ISRGQ2025(CorrelationProtocol):
    """VQualA 2025 ISRGC-Q (super-resolution generated content): 0.6 SRCC + 0.4 PLCC (Li et al., ISRG-Q
    report, 2025, eq. 1).

    One global correlation over all test images. The organisers' PLCC convention is not published
    (Lighting-YXLI/ISRGen-QA README and split files): the default is raw Pearson;
    ``plcc_mapping="logistic4"`` gives the sister
    VQualA/NTIRE convention.
    """

    name: ClassVar[str] = "isrg-q-2025"
    description: ClassVar[str] = "VQualA 2025 ISRGC-Q: 0.6 SRCC + 0.4 PLCC"
    source: ClassVar[str] = "Li et al., ISRG-Q report, 2025, eq. 1; Lighting-YXLI/ISRGen-QA README"
    srcc_weight: ClassVar[float] = 0.6
    plcc_weight: ClassVar[float] = 0.4


@PROTOCOLS.register("vquala25-fiqa")
@dataclass(frozen=True)
class VQualA25FIQA(CorrelationProtocol):
    """VQualA 2025 face IQA: (SRCC + PLCC) / 2 (Ma et al., VQualA 2025 FIQA report). Default raw PLCC; the
    winner used logistic-4."""

    name: ClassVar[str] = "vquala25-fiqa"
    description: ClassVar[str] = "VQualA 2025 face IQA: (SRCC + PLCC) / 2"
    source: ClassVar[str] = "Ma et al., VQualA 2025 FIQA report, eq. 1; sunwei925/Efficient-FIQA utils.py"


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
        mapping = None
        for m in self.mappings:
            fitted = fit_mapping_or_fallback(x, y, m) if np.ptp(x) > 0 and np.ptp(y) > 0 else None
            mapping = mapping or fitted
            yhat = fitted(x) if fitted is not None else None
            values[f"plcc_{m}"] = (
                stats.pearson(yhat, y) if yhat is not None and np.ptp(yhat) > 0 else float("nan")
            )
            values[f"rmse_{m}"] = (
                float(np.sqrt(np.mean((yhat - y) ** 2))) if yhat is not None else float("nan")
            )
        if data.mos_std is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FitWarning)
                values["outlier_ratio"] = stats.outlier_ratio(
                    x, y, data.mos_std, mapping=self.outlier_mapping
                )
        return values, mapping

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
            "plcc": stats.plcc(data.pred, data.mos, mapping=self.plcc_mapping),
            "acc": float(correct.sum() / counts.sum()),
            "plcc_raw": stats.plcc(data.pred, data.mos),
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FitWarning)
            values["plcc_alt"] = stats.plcc(data.pred, data.mos, mapping=self.alt_mapping)
        values["main_alt"] = 0.5 * values["acc"] + 0.25 * (values["srcc"] + values["plcc_alt"])
        return values, mapping

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


@PROTOCOLS.register("ntire25-t2i-structure")
@dataclass(frozen=True)
class NTIRE25T2IStructure(Protocol):
    """NTIRE 2025 T2I track 2 (EvalMuse-Structure): 0.7 F1 + 0.15 (SRCC + PLCC) (Han et al., NTIRE 2025 T2I
    QA report, eq. 2).

    F1 = 2PR/(P + R) of aggregate precision and recall (the baseline README's numbers prove it is not
    a mean of per-image F1): ``f1_average="pooled"`` (default, pixel counts summed over the test set)
    or ``"mean_pr"`` (image-averaged P and R). PLCC raw by default (the baseline's ``np.corrcoef``).
    Masks must already be binary; use :func:`perceptiq.evaluation.stats.heatmap_to_mask` for heatmaps.
    """

    name: ClassVar[str] = "ntire25-t2i-structure"
    description: ClassVar[str] = "NTIRE 2025 T2I structure: 0.7 F1 + 0.15 (SRCC + PLCC), pooled-pixel F1"
    source: ClassVar[str] = (
        "Han et al., NTIRE 2025 T2I QA report, eq. 2; DYEvaLab/EvalMuse-Structure README.md, evaluate.py"
    )
    data_kind: ClassVar[type] = StructureData
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

    @staticmethod
    def _counts(data: StructureData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        counts = [stats.mask_counts(p, g) for p, g in zip(data.pred_masks, data.gt_masks, strict=True)]
        return tuple(np.array([getattr(c, k) for c in counts], dtype=np.float64) for k in ("tp", "fp", "fn"))

    def _point(self, data):
        tp, fp, fn = self._counts(data)
        f1 = stats.f1_from_counts(tp, fp, fn, self.f1_average)
        mapping = None
        if self.plcc_mapping != "none":
            mapping = fit_mapping_or_fallback(data.pred, data.mos, self.plcc_mapping)
        values = {
            "srcc": stats.srcc(data.pred, data.mos),
            "plcc": stats.plcc(data.pred, data.mos, mapping=self.plcc_mapping),
            "f1": f1.f1,
            "precision": f1.precision,
            "recall": f1.recall,
        }
        return values, mapping

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
        if self.plcc_mapping == "none":
            plcc = weighted_pearson(data.pred, data.mos, w)
        else:
            plcc = _fitted_plcc_replicates(data, w, self.plcc_mapping, starts)
        return {"srcc": weighted_spearman(data.pred, data.mos, w), "plcc": plcc, "f1": f1}


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

    def statistics(self, data):
        return {k: float(v.mean()) for k, v in self._per_pair(data).items()}

    def replicates(self, data, w, starts=None):
        total = w.sum(axis=1)
        return {k: (w @ v) / total for k, v in self._per_pair(data).items()}


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
