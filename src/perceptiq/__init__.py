"""perceptiq: perceptual image quality assessment for super-resolution, text-to-image and face pipelines.

The public API is re-exported here and loaded on first use, so ``import perceptiq`` stays fast
(torch is imported only when a metric or model is asked for).

Example:
    >>> import perceptiq
    >>> perceptiq.srcc([1, 2, 3, 4], [1, 3, 2, 4])
    0.8
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from perceptiq.errors import PerceptiqError as PerceptiqError

__version__ = "0.1.0"

_LAZY = {
    "create_protocol": "perceptiq.evaluation.protocols",
    "list_protocols": "perceptiq.evaluation.protocols",
    "ScoreData": "perceptiq.evaluation.protocols",
    "compare_models": "perceptiq.evaluation.compare",
    "srcc": "perceptiq.evaluation.stats",
    "krcc": "perceptiq.evaluation.stats",
    "plcc": "perceptiq.evaluation.stats",
    "two_afc_score": "perceptiq.evaluation.stats",
    "create_metric": "perceptiq.metrics",
    "list_metrics": "perceptiq.metrics",
}

__all__ = ["PerceptiqError", "__version__", *_LAZY]

if TYPE_CHECKING:
    from perceptiq.evaluation.compare import compare_models as compare_models
    from perceptiq.evaluation.protocols import ScoreData as ScoreData
    from perceptiq.evaluation.protocols import create_protocol as create_protocol
    from perceptiq.evaluation.protocols import list_protocols as list_protocols
    from perceptiq.evaluation.stats import krcc as krcc
    from perceptiq.evaluation.stats import plcc as plcc
    from perceptiq.evaluation.stats import srcc as srcc
    from perceptiq.evaluation.stats import two_afc_score as two_afc_score
    from perceptiq.metrics import create_metric as create_metric
    from perceptiq.metrics import list_metrics as list_metrics


def __getattr__(name: str) -> object:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'perceptiq' has no attribute {name!r}")
