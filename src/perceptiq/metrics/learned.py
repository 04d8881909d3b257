"""Any learned model as a metric: ``create_metric("model", model="face_lite_mobilenetv3", weights=DIR)``.

The metric scores with the model's own input policy (:meth:`perceptiq.models.QualityModel.score`);
its direction is higher-is-better and its range is the model's ``score_range``. Other keywords are
options of the model (its config fields). A model without trained weights (none shipped, none given)
is refused unless ``allow_random_weights=True``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from perceptiq.errors import InputError
from perceptiq.metrics.base import Metric, register_metric

__all__ = ["LearnedModelMetric"]


@register_metric
class LearnedModelMetric(Metric):
    """A registered learned model (optionally with weights), or a saved model directory, used as a metric."""

    name = "model"
    kind = "NR"
    lower_is_better = False

    def __init__(
        self,
        model: str | None = None,
        weights: str | Path | None = None,
        allow_random_weights: bool = False,
        **config: Any,
    ) -> None:
        super().__init__()
        from perceptiq.models import create_model, load_model
        from perceptiq.models._base import require_trained_weights

        if model is None and weights is None:
            raise InputError(
                "metric 'model' needs model= (a registered name) and/or weights= (a saved model)"
            )
        self.model = (
            create_model(model, weights=weights, **config) if model is not None else load_model(weights)
        )
        require_trained_weights(self.model, model or str(weights), allow_random_weights=allow_random_weights)
        self.model.eval()

    @property
    def needs_reference(self) -> bool:
        return bool(self.model.needs_reference)

    def compute(self, image: torch.Tensor, reference: torch.Tensor | None) -> torch.Tensor:
        return self.model.score(image, reference)
