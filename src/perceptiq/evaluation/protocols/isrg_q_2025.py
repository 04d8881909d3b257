"""VQualA 2025 ISRGC-Q (super-resolution generated content): 0.6 SRCC + 0.4 PLCC."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from perceptiq.evaluation.protocols._base import PROTOCOLS, CorrelationProtocol

__all__ = ["ISRGQ2025"]


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
