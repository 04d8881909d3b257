"""The learned part of descriptor models: standardisation -> mean of small MLPs -> MOS scale.

Families whose first stage is a fixed descriptor (``nss_mlp``: natural-scene statistics;
``backbone_stats_mlp``: pooled statistics of a frozen ImageNet network) share this head. The descriptor
is standardised with the training set's statistics (buffers), mapped by the mean of ``n_members`` MLPs
trained from different seeds (a deep ensemble: Lakshminarayanan et al., Simple and Scalable Predictive
Uncertainty Estimation using Deep Ensembles, NeurIPS 2017) and brought back to the training MOS scale.
Scores are clipped to ``mos_range`` in eval mode: far from the training images the MLPs extrapolate
linearly, and a score outside the scale has no meaning on it. The trainer trains the head on cached
descriptors (``perceptiq.training.descriptors``), so ``forward`` also accepts descriptor batches.
"""

from __future__ import annotations

import abc
import dataclasses

import torch
from torch import nn

from perceptiq.errors import InputError
from perceptiq.models._base import QualityModel, weights_follow_context

__all__ = ["DescriptorEnsembleModel"]

_STATISTICS = ("feature_mean", "feature_std", "target_mean", "target_std")


class DescriptorEnsembleModel(QualityModel):
    """Fixed descriptor of ``feature_dim`` values -> standardisation -> mean of member MLPs -> MOS.

    Subclasses describe images (:meth:`features`, :attr:`descriptor_id`) and score image batches
    (:meth:`standardised_scores`); their config has ``hidden``, ``dropout``, ``n_members`` and
    ``mos_range``.
    """

    def _build_head(self, feature_dim: int) -> None:
        cfg = self.config
        self.feature_dim = feature_dim
        self.members = nn.ModuleList(
            nn.Sequential(
                nn.Dropout(cfg.dropout / 2),
                nn.Linear(feature_dim, cfg.hidden),
                nn.GELU(),
                nn.Dropout(cfg.dropout),
                nn.Linear(cfg.hidden, 1),
            )
            for _ in range(cfg.n_members)
        )
        self.register_buffer("feature_mean", torch.zeros(feature_dim))
        self.register_buffer("feature_std", torch.ones(feature_dim))
        self.register_buffer("target_mean", torch.zeros(()))
        self.register_buffer("target_std", torch.ones(()))

    @property
    def score_range(self) -> tuple[float, float]:  # type: ignore[override]
        return tuple(self.config.mos_range)

    @property
    @abc.abstractmethod
    def descriptor_id(self) -> str:
        """What :meth:`features` computes (the key of cached descriptors, perceptiq.training.descriptors)."""

    @abc.abstractmethod
    def features(self, images: torch.Tensor, view: str = "full") -> torch.Tensor:
        """The descriptor (B, feature_dim) of one view of images (B, 3, H, W) in [0, 1]."""

    @abc.abstractmethod
    def standardised_scores(self, images: torch.Tensor) -> torch.Tensor:
        """Head outputs (B,) on the standardised scale for an image batch (the family's test policy)."""

    def fit_standardisation(self, features: torch.Tensor, targets: torch.Tensor) -> None:
        """Store the training set's feature and target statistics (the trainer calls this before training)."""
        self.feature_mean.copy_(features.mean(0))
        self.feature_std.copy_(features.std(0).clamp_min(1e-8))
        self.target_mean.copy_(targets.mean())
        self.target_std.copy_(targets.std().clamp_min(1e-8))

    def head(self, features: torch.Tensor, member: int | None = None) -> torch.Tensor:
        """Standardised predictions (B,) of one member, or the ensemble mean when ``member`` is None."""
        z = ((features - self.feature_mean) / self.feature_std).to(self.members[0][1].weight.dtype)
        if member is not None:
            return self.members[member](z).squeeze(-1)
        return torch.stack([m(z).squeeze(-1) for m in self.members]).mean(0)

    @classmethod
    def merge(cls, models: list[DescriptorEnsembleModel]) -> DescriptorEnsembleModel:
        """One model whose members are those of ``models`` (runs from different seeds: a deep ensemble).

        The models must share everything but the members (config up to ``n_members``, the descriptor's
        weights if it has any, the standardisation fitted on the same images).
        """
        first = models[0]
        shared = {k: v for k, v in first.state_dict().items() if not k.startswith("members.")}
        for other in models[1:]:
            same = dataclasses.replace(other.config, n_members=first.config.n_members) == first.config
            theirs = other.state_dict()
            if not same or not all(torch.equal(v, theirs[k]) for k, v in shared.items()):
                raise InputError(
                    f"{first.config.family} models to merge need the same config, descriptor and "
                    "training statistics"
                )
        n_members = sum(m.config.n_members for m in models)
        with weights_follow_context():
            merged = cls(dataclasses.replace(first.config, n_members=n_members))
        members = nn.ModuleList(member for m in models for member in m.members).state_dict()
        merged.load_state_dict({**shared, **{f"members.{k}": v for k, v in members.items()}})
        return merged.to(first.feature_mean.device)

    def forward(self, images: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        """Scores (B,) of images (B, 3, H, W), or of precomputed descriptors (B, D) or (B, V, D).

        Descriptors of V views are scored as the mean head output over the views. In eval mode the
        scores are clipped to ``config.mos_range`` (training sees the unclipped values, so the loss
        keeps its gradient).
        """
        if images.ndim == 2:
            standardised = self.head(images)
        elif images.ndim == 3:
            standardised = self.head(images.flatten(0, 1)).view(images.shape[:2]).mean(1)
        else:
            standardised = self.standardised_scores(images)
        scores = standardised * self.target_std + self.target_mean
        if self.training:
            return scores
        low, high = self.config.mos_range
        return scores.clamp(low, high)
