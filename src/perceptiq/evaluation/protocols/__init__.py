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

Create with :func:`create_protocol` (options as keywords, e.g. ``plcc_mapping="poly3"``). The shared
parts (data containers, results, the ``Protocol`` base class, the registry) are in ``_base``; each
challenge has its own module, which registers its protocol when this package is imported.
"""

from perceptiq.evaluation.protocols._base import (
    MIN_BOOTSTRAP_ITEMS,
    PROTOCOLS,
    AlignmentData,
    CorrelationProtocol,
    Direction,
    EvaluationResult,
    PairData,
    Protocol,
    ScoreData,
    StructureData,
    create_protocol,
    list_protocols,
    orient,
    score_direction,
    small_sample_note,
)
from perceptiq.evaluation.protocols.generic import Generic
from perceptiq.evaluation.protocols.isrg_q_2025 import ISRGQ2025
from perceptiq.evaluation.protocols.ntire25_t2i_alignment import NTIRE25T2IAlignment
from perceptiq.evaluation.protocols.ntire25_t2i_structure import NTIRE25T2IStructure
from perceptiq.evaluation.protocols.realsr_2afc import RealSR2AFC
from perceptiq.evaluation.protocols.vquala25_fiqa import VQualA25FIQA

__all__ = [
    "MIN_BOOTSTRAP_ITEMS",
    "PROTOCOLS",
    "AlignmentData",
    "CorrelationProtocol",
    "Direction",
    "EvaluationResult",
    "Generic",
    "ISRGQ2025",
    "NTIRE25T2IAlignment",
    "NTIRE25T2IStructure",
    "PairData",
    "Protocol",
    "RealSR2AFC",
    "ScoreData",
    "StructureData",
    "VQualA25FIQA",
    "create_protocol",
    "list_protocols",
    "orient",
    "score_direction",
    "small_sample_note",
]
