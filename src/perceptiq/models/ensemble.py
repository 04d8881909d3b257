"""Weighted ensembles of registered quality models (Han et al., NTIRE 2025 T2I QA report: ensembles in both
T2I tracks; Ma et al., VQualA 2025 FIQA report:
two-model ensembles of the face IQA challenge).

The ensemble score of an image is ``sum_i w_i z_i / sum_i w_i`` over members ``i``, with ``z_i`` the
member's score, or, with ``standardise=True``, its standardised score ``(s_i - m_i) / d_i``. The
per-member mean ``m_i`` and standard deviation ``d_i`` are estimated on a calibration set
(:meth:`EnsembleModel.calibrate`, e.g. the members' scores on the training images) and stored in the
config, so that members on different scales (a sigmoid in [0, 1], a MOS level in [1, 5]) weigh as
their weights say. Standardisation is an affine map per member, so it changes the ensemble's values
and ranking only through the relative weighting of members.

:meth:`EnsembleModel.score` scores each member under its own input policy, or every member under
the ``policy`` it is given (the ensemble's own ``input_policy`` is not used);
:meth:`EnsembleModel.forward` feeds every member the same batch (for training or for members that
share one policy). Full-reference members receive the reference,
no-reference members do not. :func:`~perceptiq.models.save_model` stores the member configs in the
ensemble's ``config.json`` and all member weights in one safetensors file, so
:func:`~perceptiq.models.load_model` rebuilds the members.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from perceptiq.errors import InputError
from perceptiq.functional.patches import InputPolicy
from perceptiq.models._base import (
    FAMILIES,
    MODELS,
    ModelConfig,
    QualityModel,
    register_family,
    register_model,
)

__all__ = ["EnsembleConfig", "EnsembleModel", "combine_scores", "ensemble_config", "build_ensemble"]


def combine_scores(
    scores: torch.Tensor,
    weights: Sequence[float],
    means: Sequence[float] | None = None,
    stds: Sequence[float] | None = None,
) -> torch.Tensor:
    """Weighted mean over members of (M, B) scores -> (B,), optionally standardised per member first."""
    m = scores.shape[0]
    w = torch.as_tensor(list(weights), dtype=scores.dtype, device=scores.device)
    if w.shape != (m,):
        raise InputError(f"need {m} weights, got {len(weights)}")
    if means is not None and stds is not None:
        mu = torch.as_tensor(list(means), dtype=scores.dtype, device=scores.device)[:, None]
        sd = torch.as_tensor(list(stds), dtype=scores.dtype, device=scores.device)[:, None]
        scores = (scores - mu) / sd
    return (w[:, None] * scores).sum(0) / w.sum()


@dataclass
class EnsembleConfig(ModelConfig):
    """Configuration of :class:`EnsembleModel`.

    Attributes:
        members: one dict per member: ``name`` (a label: the registered variant it came from, or its
            family), ``config`` (its ``ModelConfig.to_dict()``; None = the defaults of variant ``name``;
            filled in when the ensemble is built), ``weight`` (>= 0, default 1),
            and the standardisation constants ``mean`` (default 0) and ``std`` (default 1).
        standardise: standardise each member's score with its ``mean``/``std`` before weighting.
    """

    family = "ensemble"
    members: list[dict[str, Any]] = field(default_factory=list)
    standardise: bool = False


def _member_config(entry: dict[str, Any], index: int) -> ModelConfig:
    if not isinstance(entry, dict) or ("name" not in entry and "config" not in entry):
        raise InputError(f"ensemble member {index} must be a dict with 'name' and/or 'config', got {entry!r}")
    data = entry.get("config")
    if data is None:
        return MODELS.create(str(entry["name"]))
    if isinstance(data, ModelConfig):
        return data
    family = data.get("family") if isinstance(data, dict) else None
    if not family:
        raise InputError(f"ensemble member {index}: config must be a dict with a 'family' key")
    return FAMILIES.create(family).config_class.from_dict(data)


def _positive_finite(value: Any, what: str, *, allow_zero: bool) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        raise InputError(f"{what} must be finite and {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return number


@register_family("ensemble")
class EnsembleModel(QualityModel):
    """Weighted (optionally standardised) mean of member model scores."""

    config_class = EnsembleConfig

    def __init__(self, config: EnsembleConfig) -> None:
        super().__init__(config)
        if not config.members:
            raise InputError(
                "an ensemble needs at least one member (members=[{'name': ..., 'weight': ...}, ...])"
            )
        configs = [_member_config(entry, i) for i, entry in enumerate(config.members)]
        config.members = [{**e, "config": c.to_dict()} for e, c in zip(config.members, configs, strict=True)]
        self.members = nn.ModuleList(FAMILIES.create(c.family)(c) for c in configs)
        self.weights = [
            _positive_finite(e.get("weight", 1.0), f"weight of member {i}", allow_zero=True)
            for i, e in enumerate(config.members)
        ]
        if sum(self.weights) <= 0:
            raise InputError("ensemble weights must have a positive sum")
        self.means = [float(e.get("mean", 0.0)) for e in config.members]
        self.stds = [
            _positive_finite(e.get("std", 1.0), f"std of member {i}", allow_zero=False)
            for i, e in enumerate(config.members)
        ]
        self.needs_reference = any(m.needs_reference for m in self.members)

    def _combine(self, scores: list[torch.Tensor]) -> torch.Tensor:
        stacked = torch.stack([s.to(scores[0].dtype) for s in scores])
        if self.config.standardise:
            return combine_scores(stacked, self.weights, self.means, self.stds)
        return combine_scores(stacked, self.weights)

    def _reference_for(self, member: QualityModel, reference: torch.Tensor | None) -> torch.Tensor | None:
        if member.needs_reference and reference is None:
            raise InputError(f"ensemble member {type(member).__name__} is full-reference: pass reference=")
        return reference if member.needs_reference else None

    def forward(self, images: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        return self._combine([m(images, self._reference_for(m, reference)) for m in self.members])

    def member_scores(
        self,
        images: torch.Tensor,
        reference: torch.Tensor | None = None,
        *,
        max_batch: int = 16,
        policy: InputPolicy | None = None,
    ) -> torch.Tensor:
        """Raw scores (M, B) of each member under its own input policy, or under ``policy`` when given."""
        rows = [
            m.score(images, self._reference_for(m, reference), max_batch=max_batch, policy=policy)
            for m in self.members
        ]
        return torch.stack([r.to(rows[0].dtype) for r in rows])

    @torch.no_grad()
    def score(
        self,
        images: torch.Tensor,
        reference: torch.Tensor | None = None,
        *,
        max_batch: int = 16,
        policy: InputPolicy | None = None,
    ) -> torch.Tensor:
        """Ensemble scores (B,): members scored under their own input policies (or ``policy``), combined."""
        return self._combine(list(self.member_scores(images, reference, max_batch=max_batch, policy=policy)))

    def calibrate(self, member_scores: torch.Tensor) -> None:
        """Set each member's standardisation ``mean``/``std`` from its scores (M, N) on a calibration set.

        Uses the population standard deviation; enables ``standardise``. A member with constant
        scores cannot be standardised.
        """
        if (
            member_scores.ndim != 2
            or member_scores.shape[0] != len(self.members)
            or member_scores.shape[1] < 2
        ):
            raise InputError(
                f"member_scores must be ({len(self.members)}, N >= 2), got {tuple(member_scores.shape)}"
            )
        x = member_scores.detach().to(torch.float64)
        means, stds = x.mean(dim=1), x.std(dim=1, correction=0)
        if bool((stds <= 0).any()):
            raise InputError(
                "a member gives constant scores on the calibration set; it cannot be standardised"
            )
        self.means, self.stds = means.tolist(), stds.tolist()
        for entry, mu, sd in zip(self.config.members, self.means, self.stds, strict=True):
            entry["mean"], entry["std"] = mu, sd
        self.config.standardise = True


def ensemble_config(
    members: Sequence[str | ModelConfig | QualityModel],
    weights: Sequence[float] | None = None,
    *,
    standardise: bool = False,
) -> EnsembleConfig:
    """Ensemble config from registered names, member configs or built models (equal weights by default)."""
    if weights is not None and len(weights) != len(members):
        raise InputError(f"{len(members)} members but {len(weights)} weights")
    entries = []
    for i, member in enumerate(members):
        if isinstance(member, QualityModel):
            member = member.config
        if isinstance(member, str):
            cfg, name = MODELS.create(member), member
        elif isinstance(member, ModelConfig):
            cfg, name = member, member.family
        else:
            raise InputError(f"member {i} must be a model name, a ModelConfig or a QualityModel")
        entries.append(
            {"name": name, "config": cfg.to_dict(), "weight": 1.0 if weights is None else float(weights[i])}
        )
    return EnsembleConfig(members=entries, standardise=standardise)


def build_ensemble(
    models: Sequence[QualityModel], weights: Sequence[float] | None = None, *, standardise: bool = False
) -> EnsembleModel:
    """An :class:`EnsembleModel` of already built (e.g. trained) models, with copies of their weights."""
    ensemble = EnsembleModel(ensemble_config(models, weights, standardise=standardise))
    for target, source in zip(ensemble.members, models, strict=True):
        target.load_state_dict(source.state_dict())
    return ensemble


@register_model("ensemble")
def ensemble() -> EnsembleConfig:
    """An empty ensemble: give ``members=[...]`` (see :func:`ensemble_config`)."""
    return EnsembleConfig()
