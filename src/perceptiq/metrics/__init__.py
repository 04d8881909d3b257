"""Registered image quality metrics: thin ``torch.nn.Module`` wrappers over :mod:`perceptiq.functional`."""

from perceptiq.metrics import fr as fr  # registers the full-reference metrics
from perceptiq.metrics import learned as learned  # registers "model" (any learned model)
from perceptiq.metrics import nr as nr  # registers the no-reference metrics (NIQE, BRISQUE)
from perceptiq.metrics.base import METRICS as METRICS
from perceptiq.metrics.base import Metric as Metric
from perceptiq.metrics.base import create_metric as create_metric
from perceptiq.metrics.base import list_metrics as list_metrics
from perceptiq.metrics.base import register_metric as register_metric

__all__ = ["fr", "learned", "nr", "METRICS", "Metric", "create_metric", "list_metrics", "register_metric"]
