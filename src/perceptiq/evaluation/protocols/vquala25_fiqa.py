"""VQualA 2025 face IQA: (SRCC + PLCC) / 2."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from perceptiq.evaluation.protocols._base import PROTOCOLS, CorrelationProtocol

__all__ = ["VQualA25FIQA"]


@PROTOCOLS.register("vquala25-fiqa")
@dataclass(frozen=True)
class VQualA25FIQA(CorrelationProtocol):
    """VQualA 2025 face IQA: (SRCC + PLCC) / 2 (Ma et al., VQualA 2025 FIQA report). Default raw PLCC; the
    winner used logistic-4."""

    name: ClassVar[str] = "vquala25-fiqa"
    description: ClassVar[str] = "VQualA 2025 face IQA: (SRCC + PLCC) / 2"
    source: ClassVar[str] = "Ma et al., VQualA 2025 FIQA report, eq. 1; sunwei925/Efficient-FIQA utils.py"
