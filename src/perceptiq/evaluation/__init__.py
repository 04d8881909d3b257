"""Evaluate quality predictions exactly as the IQA challenges do.

Pure statistics (:mod:`.stats`), nonlinear mappings (:mod:`.fitting`), bootstrap intervals and
paired tests (:mod:`.bootstrap`, :mod:`.compare`), challenge protocols (:mod:`.protocols`) and
reports (:mod:`.report`).
"""

from perceptiq.evaluation.compare import Comparison as Comparison
from perceptiq.evaluation.compare import compare_models as compare_models
from perceptiq.evaluation.protocols import AlignmentData as AlignmentData
from perceptiq.evaluation.protocols import EvaluationResult as EvaluationResult
from perceptiq.evaluation.protocols import PairData as PairData
from perceptiq.evaluation.protocols import Protocol as Protocol
from perceptiq.evaluation.protocols import ScoreData as ScoreData
from perceptiq.evaluation.protocols import StructureData as StructureData
from perceptiq.evaluation.protocols import create_protocol as create_protocol
from perceptiq.evaluation.protocols import list_protocols as list_protocols
from perceptiq.evaluation.stats import krcc as krcc
from perceptiq.evaluation.stats import plcc as plcc
from perceptiq.evaluation.stats import srcc as srcc
from perceptiq.evaluation.stats import two_afc_score as two_afc_score

__all__ = [
    "AlignmentData",
    "Comparison",
    "EvaluationResult",
    "PairData",
    "Protocol",
    "ScoreData",
    "StructureData",
    "compare_models",
    "create_protocol",
    "krcc",
    "list_protocols",
    "plcc",
    "srcc",
    "two_afc_score",
]
