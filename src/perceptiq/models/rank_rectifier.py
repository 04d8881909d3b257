"""A frozen quality model calibrated by a small rectifier learned from model rankings (Chen et al., Learning
from Model Rankings, 2025).

Chen et al., Learning from Model Rankings, 2025 ("Learning from model rankings improves blind SR IQA", sec.
II-B, eqs. 3-6; SR-IQA-SMC25 rectifier.py and train.py):
a pre-trained quality model g (a CLIP ViT-B/32 prompt model, :mod:`perceptiq.models.clip_prompt`)
is calibrated by a rectifier h that maps image features to a scale and a shift (a, b):

* ``form="residual"`` (released ``rectifier.py``, default): ``Q = (|a| + 1) * g(x) + b``; a = b = 0
  leaves g unchanged and the slope stays at least 1, so the calibrated score keeps g's order
  for a constant (a, b).
* ``form="affine"`` (the paper's wording): ``Q = a * g(x) + b``.

The rectifier is an MLP applied to every feature token — Linear(C, hidden), ReLU, Dropout(0.1),
Linear(hidden, 2) with hidden = C by default — whose outputs are averaged over the tokens to give
(a, b). Features (``features=``):

* ``"extractor"``: a second frozen network. The released code uses MANIQA's 384-d tokens of the SR
  image; MANIQA is not a timm model, so the default extractor here is timm's
  ``vit_small_patch16_224`` (384-d tokens, ImageNet normalisation, input resized to 224), built with
  random weights unless ``extractor_weights`` names a checkpoint saved by timm (loaded through timm's
  own pretrained-weights path). CNN feature maps (B, C, H, W) become H*W tokens.
* ``"base"``: the base model's own ``forward_features`` (for a ``clip_prompt`` base, its image
  embedding averaged over the LIQE patches: one token per image). No second network.

The base model is any registered quality model (``base`` = variant name, ``base_options`` =
overrides; after construction its full config is recorded in ``base_config``). It is frozen
(``requires_grad=False``, kept in eval mode) unless ``train_base=True``: the paper calls g frozen, but
the released ``train.py`` also optimises all CLIP weights except the logit scale (SR-IQA-SMC25 train.py).
``base_weights`` (a perceptiq weights directory for the base) is read at construction only; the
weights then live in this model's state.

Training (Chen et al., Learning from Model Rankings, 2025, eqs. 4-6): batches of B images of one SR method;
the probability that method i
beats method j is Phi((mean_i Q - mean_j Q) / sqrt(2)), trained with the fidelity loss against the
ranking label; that loss lives in :mod:`perceptiq.losses`. Scores are on g's scale, higher = better.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from perceptiq.errors import InputError
from perceptiq.models._backbones import IMAGENET_MEAN, IMAGENET_STD, Normalise, create_backbone
from perceptiq.models._base import (
    FAMILIES,
    MODELS,
    ModelConfig,
    QualityModel,
    load_weights,
    register_family,
    register_model,
)

__all__ = ["RankRectifierConfig", "RankRectifierModel", "rectify", "RectifierHead"]


def rectify(
    q: torch.Tensor, a: torch.Tensor, b: torch.Tensor, form: Literal["residual", "affine"] = "residual"
) -> torch.Tensor:
    """Calibrated score: ``(|a| + 1) q + b`` (``"residual"``, released code) or ``a q + b`` (``"affine"``).

    Example:
        >>> rectify(torch.tensor([2.0]), torch.tensor([-0.5]), torch.tensor([0.2]))
        tensor([3.2000])
    """
    if form == "residual":
        return (a.abs() + 1.0) * q + b
    if form == "affine":
        return a * q + b
    raise InputError(f"rectifier form must be 'residual' or 'affine', got {form!r}")


class RectifierHead(nn.Module):
    """Per-token MLP -> (a, b), averaged over tokens: features (B, C) or (B, N, C) -> (B, 2)."""

    def __init__(self, width: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 2)
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        tokens = features.unsqueeze(1) if features.ndim == 2 else features
        if tokens.ndim != 3:
            raise InputError(f"rectifier features must be (B, C) or (B, N, C), got {tuple(features.shape)}")
        return self.mlp(tokens).mean(dim=1)


@dataclass
class RankRectifierConfig(ModelConfig):
    """Configuration of :class:`RankRectifierModel`.

    Attributes:
        base: registered variant of the base model.
        base_options: overrides of the base variant's config.
        base_config: the base's full config (``to_dict``); used instead of ``base`` when set.
        base_weights: perceptiq weights of the base (read at construction only).
        form: ``"residual"`` or ``"affine"``.
        features: ``"extractor"`` (a second frozen timm network) or ``"base"``.
        extractor: timm model name; ``extractor_kwargs``: its ``create_model`` options.
        extractor_weights: a checkpoint of the extractor saved by timm (read at construction only).
        hidden: MLP width (0 = the feature width).
        dropout: dropout inside the MLP.
        train_base: also train the base model.
    """

    family = "rank_rectifier"
    base: str = "clip_prompt_vit_b32"
    base_options: dict[str, Any] = field(default_factory=dict)
    base_config: dict[str, Any] = field(default_factory=dict)
    base_weights: str | None = None
    form: Literal["residual", "affine"] = "residual"
    features: Literal["extractor", "base"] = "extractor"
    extractor: str = "vit_small_patch16_224"
    extractor_kwargs: dict[str, Any] = field(default_factory=dict)
    extractor_weights: str | None = None
    hidden: int = 0
    dropout: float = 0.1
    train_base: bool = False


def _build_base(config: RankRectifierConfig) -> QualityModel:
    if config.base_config:
        family = config.base_config.get("family")
        if not family:
            raise InputError("base_config lacks 'family'")
        base_cfg = FAMILIES.create(family).config_class.from_dict(config.base_config)
    else:
        base_cfg = MODELS.create(config.base)
    if config.base_options:
        base_cfg = base_cfg.replace(**config.base_options)
    base = FAMILIES.create(base_cfg.family)(base_cfg)
    if config.base_weights is not None:
        load_weights(base, config.base_weights)
    return base


@register_family("rank_rectifier")
class RankRectifierModel(QualityModel):
    """Base quality model g plus rectifier h: ``Q = (|a| + 1) g(x) + b`` (see the module docstring)."""

    config_class = RankRectifierConfig
    score_range = None  # the base model's scale, shifted and stretched

    def __init__(self, config: RankRectifierConfig) -> None:
        if config.features not in ("extractor", "base"):
            raise InputError(f"features must be 'extractor' or 'base', got {config.features!r}")
        if config.form not in ("residual", "affine"):
            raise InputError(f"rectifier form must be 'residual' or 'affine', got {config.form!r}")
        base = _build_base(config)
        config = config.replace(base_config=base.config.to_dict(), base_options={}, base_weights=None)
        extractor = None
        if config.features == "extractor":
            extractor = create_backbone(
                config.extractor, config.extractor_kwargs, config.extractor_weights, num_classes=0
            )
            config = config.replace(extractor_weights=None)
        super().__init__(config)
        self.base = base
        self.base.requires_grad_(config.train_base)
        if config.train_base and hasattr(self.base, "backbone"):  # the logit scale stays as configured
            self.base.backbone.logit_scale_parameter().requires_grad_(self.base.config.train_logit_scale)
        self.extractor = extractor
        if extractor is not None:
            extractor.requires_grad_(False)
            from timm.data import resolve_data_config

            data = resolve_data_config(model=extractor)
            fixed = getattr(
                getattr(extractor, "patch_embed", None), "img_size", None
            )  # ViTs built for a size
            self.extractor_size = tuple(int(v) for v in (fixed or data["input_size"][1:]))
            self.extractor_norm = Normalise(data.get("mean", IMAGENET_MEAN), data.get("std", IMAGENET_STD))
            width = int(extractor.num_features)
        else:
            if not hasattr(self.base, "forward_features"):
                raise InputError(
                    f"features='base' needs a base model with forward_features ({type(base).__name__})"
                )
            width = getattr(self.base, "num_features", None) or self._probe_feature_width()
        self.head = RectifierHead(width, config.hidden or width, config.dropout)
        self.train(True)

    def train(self, mode: bool = True) -> RankRectifierModel:
        """Train mode for the rectifier; frozen networks stay in eval mode."""
        super().train(mode)
        if not self.config.train_base:
            self.base.eval()
        if self.extractor is not None:
            self.extractor.eval()
        return self

    @torch.no_grad()
    def _probe_feature_width(self) -> int:
        was_training = self.base.training
        self.base.eval()
        width = int(self.base.forward_features(torch.zeros(1, 3, 64, 64)).shape[-1])
        self.base.train(was_training)
        return width

    def extractor_features(self, images: torch.Tensor) -> torch.Tensor:
        """Frozen extractor tokens (B, N, C) of images in [0, 1]."""
        assert self.extractor is not None
        x = nn.functional.interpolate(
            images, size=self.extractor_size, mode="bicubic", align_corners=False, antialias=True
        )
        with torch.no_grad():
            out = self.extractor.forward_features(self.extractor_norm(x))
        return out.flatten(2).transpose(1, 2) if out.ndim == 4 else out

    def base_outputs(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """g(x) (B,) and, for ``features="base"``, the base's features from the same pass."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.config.train_base):
            if self.config.features == "base" and hasattr(self.base, "forward_with_features"):
                return self.base.forward_with_features(images)
            q = self.base(images)
            return q, (self.base.forward_features(images) if self.config.features == "base" else None)

    def rectifier_parameters(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(g(x), a, b), each (B,)."""
        q, feats = self.base_outputs(images)
        if self.config.features == "extractor":
            feats = self.extractor_features(images)
        ab = self.head(feats)
        return q, ab[:, 0], ab[:, 1]

    def forward(self, images: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        q, a, b = self.rectifier_parameters(images)
        return rectify(q, a, b, self.config.form)


@register_model("rank_rectifier_clip_vit_b32")
def rank_rectifier_clip_vit_b32() -> RankRectifierConfig:
    """SR-IQA: CLIP ViT-B/32 prompt model (LIQE patches) + rectifier on ViT-S/16 384-d tokens."""
    return RankRectifierConfig(base="clip_prompt_vit_b32")


@register_model("rank_rectifier_clip_vit_b32_own")
def rank_rectifier_clip_vit_b32_own() -> RankRectifierConfig:
    """CLIP ViT-B/32 prompt model + rectifier on its own image embedding (no second network)."""
    return RankRectifierConfig(base="clip_prompt_vit_b32", features="base")
