"""Structure-distortion model for generated images: a score head and a heatmap decoder (Han et al., NTIRE
2025 T2I QA report, sec. 5.2).

The NTIRE 2025 T2I structure track asks for a structure score and a distortion mask per image
(EvalMuse-Structure evaluate.py). The design follows the common part of the top methods of sec. 5.2: one
image encoder
(a timm backbone with multi-scale features; OPDAI use Florence-2, Tenryu Babu CLIP), an optional prompt
embedding fused into the deepest image tokens by cross-attention (Tenryu Babu's cross-modal fusion;
"out of memory" concatenate SigLIP2 image and text tokens), a pooled MLP score head, and a U-Net
style decoder with skip connections that predicts the distortion heatmap (OPDAI, Tenryu Babu).

Conventions: images (B, 3, H, W) in [0, 1] are resized to ``input_size`` squared (448 in the RAHF
baseline, which uses Pillow's Lanczos; here antialiased bilinear); the score is a sigmoid in [0, 1]
(the baseline trains on ``(MOS - 1) / 4``), higher = better; heatmaps are sigmoids in [0, 1], higher =
more likely distorted, at ``heatmap_size`` squared (512 in the baseline) or, with ``heatmap_size=None``,
at the input image size. :meth:`T2IStructureModel.mask` binarises them as the baseline does,
``round(255 h) > 40`` (:func:`perceptiq.evaluation.stats.heatmap_to_mask`).

Losses of sec. 5.2: heatmap ``MSE + (1 - Dice)`` (eq. 9, :class:`perceptiq.losses.HeatmapLoss`) and
score ``MSE + 0.3 (1 - PLCC) + (1 - SRCC)`` (eq. 10); or ``16 MSE_heatmap + 4 MSE_score`` (eq. 11).
Prompt embeddings come from any text encoder (e.g. a CLIP text tower), as (B, E) pooled vectors or
(B, T, E) token sequences with an optional (B, T) validity mask.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from perceptiq.errors import InputError
from perceptiq.evaluation.stats import heatmap_to_mask
from perceptiq.functional.patches import InputPolicy
from perceptiq.models._backbones import IMAGENET_MEAN, IMAGENET_STD, Normalise, create_backbone
from perceptiq.models._base import ModelConfig, QualityModel, register_family, register_model

__all__ = ["T2IStructureConfig", "T2IStructureModel"]


@dataclass
class T2IStructureConfig(ModelConfig):
    """Configuration of :class:`T2IStructureModel`.

    Attributes:
        backbone: timm model name, built with ``features_only=True`` (a CNN or hierarchical transformer).
        backbone_kwargs: extra ``timm.create_model`` arguments.
        input_size: side of the square the images are resized to (None: use the images as given).
        heatmap_size: side of the square output heatmaps (None: the size of the input images).
        prompt_dim: width of prompt embeddings (0: image only; 768 for CLIP ViT-L/14 text features).
        width: channels of the fused deepest tokens and of every decoder stage.
        heads: heads of the prompt cross-attention (must divide ``width``).
        score_hidden: hidden width of the score MLP.
        dropout: dropout in the score MLP.
        mean, std: input normalisation.
        backbone_weights: optional local checkpoint of the backbone (loaded by timm).
    """

    family = "t2i_structure"
    backbone: str = "convnext_tiny"
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    input_size: int | None = 448
    heatmap_size: int | None = 512
    prompt_dim: int = 0
    width: int = 128
    heads: int = 8
    score_hidden: int = 256
    dropout: float = 0.1
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    backbone_weights: str | None = None
    input_policy: InputPolicy = field(default_factory=InputPolicy)


class _DecoderStage(nn.Module):
    """Upsample to the skip's size, concatenate the projected skip, two 3 x 3 conv-BN-ReLU layers."""

    def __init__(self, skip_channels: int, width: int) -> None:
        super().__init__()
        self.skip = nn.Conv2d(skip_channels, width, 1)
        self.block = nn.Sequential(
            nn.Conv2d(2 * width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.block(torch.cat([x, self.skip(skip)], dim=1))


@register_family("t2i_structure")
class T2IStructureModel(QualityModel):
    """Image (+ prompt) encoder with a structure-score head and a distortion-heatmap decoder."""

    config_class = T2IStructureConfig
    score_range = (0.0, 1.0)

    def __init__(self, config: T2IStructureConfig) -> None:
        super().__init__(config)
        if config.width % config.heads:
            raise InputError(f"heads={config.heads} does not divide width={config.width}")
        self.normalise = Normalise(config.mean, config.std)
        self.encoder = create_backbone(
            config.backbone, config.backbone_kwargs, config.backbone_weights, features_only=True
        )
        channels = list(self.encoder.feature_info.channels())
        self.top = nn.Conv2d(channels[-1], config.width, 1)
        if config.prompt_dim > 0:
            self.prompt_proj = nn.Linear(config.prompt_dim, config.width)
            self.cross_attn = nn.MultiheadAttention(config.width, config.heads, batch_first=True)
            self.fusion_norm = nn.LayerNorm(config.width)
        self.score_head = nn.Sequential(
            nn.LayerNorm(config.width),
            nn.Linear(config.width, config.score_hidden),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.score_hidden, 1),
        )
        self.decoder = nn.ModuleList(_DecoderStage(c, config.width) for c in reversed(channels[:-1]))
        self.heatmap_head = nn.Conv2d(config.width, 1, 1)

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        size = self.config.input_size
        if size is not None and tuple(images.shape[-2:]) != (size, size):
            images = F.interpolate(
                images, size=(size, size), mode="bilinear", align_corners=False, antialias=True
            )
        return self.normalise(images)

    def _fuse(
        self, tokens: torch.Tensor, prompt: torch.Tensor | None, prompt_mask: torch.Tensor | None
    ) -> torch.Tensor:
        if prompt is None:
            return tokens
        if self.config.prompt_dim <= 0:
            raise InputError("this model has no prompt input (prompt_dim=0); build it with prompt_dim=E")
        if prompt.ndim == 2:
            prompt = prompt.unsqueeze(1)
        if (
            prompt.ndim != 3
            or prompt.shape[0] != tokens.shape[0]
            or prompt.shape[-1] != self.config.prompt_dim
        ):
            raise InputError(
                f"prompt must be (B, {self.config.prompt_dim}) or (B, T, {self.config.prompt_dim}) with "
                f"B = {tokens.shape[0]}, got {tuple(prompt.shape)}"
            )
        padding = None
        if prompt_mask is not None:
            if prompt_mask.shape != prompt.shape[:2]:
                raise InputError(
                    f"prompt_mask must have shape {tuple(prompt.shape[:2])}, got {tuple(prompt_mask.shape)}"
                )
            padding = ~prompt_mask.to(torch.bool)
        keys = self.prompt_proj(prompt.to(tokens.dtype))
        attended, _ = self.cross_attn(tokens, keys, keys, key_padding_mask=padding, need_weights=False)
        return self.fusion_norm(tokens + attended)

    def _encode(
        self, images: torch.Tensor, prompt: torch.Tensor | None, prompt_mask: torch.Tensor | None
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        feats = self.encoder(self._prepare(images))
        top = self.top(feats[-1])
        b, c, h, w = top.shape
        tokens = self._fuse(top.flatten(2).transpose(1, 2), prompt, prompt_mask)
        return feats, tokens.transpose(1, 2).reshape(b, c, h, w)

    def _score(self, fused: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.score_head(fused.mean(dim=(-2, -1)))).squeeze(-1)

    def forward(
        self,
        images: torch.Tensor,
        reference: torch.Tensor | None = None,
        *,
        prompt: torch.Tensor | None = None,
        prompt_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Structure scores (B,) in [0, 1]; the heatmap decoder is not run."""
        _, fused = self._encode(images, prompt, prompt_mask)
        return self._score(fused)

    def forward_all(
        self,
        images: torch.Tensor,
        *,
        prompt: torch.Tensor | None = None,
        prompt_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Differentiable scores (B,) and heatmaps (B, 1, S, S) or (B, 1, H, W) in [0, 1], for training."""
        feats, fused = self._encode(images, prompt, prompt_mask)
        x = fused
        for stage, skip in zip(self.decoder, reversed(feats[:-1]), strict=True):
            x = stage(x, skip)
        size = self.config.heatmap_size
        out_size = (size, size) if size is not None else tuple(images.shape[-2:])
        logits = F.interpolate(self.heatmap_head(x), size=out_size, mode="bilinear", align_corners=False)
        return self._score(fused), torch.sigmoid(logits)

    @torch.no_grad()
    def predict(
        self,
        images: torch.Tensor,
        *,
        prompt: torch.Tensor | None = None,
        prompt_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores (B,) and heatmaps (B, 1, H, W) in [0, 1] in eval mode, without gradients."""
        was_training = self.training
        self.eval()
        try:
            param = next(self.parameters())
            images = images.to(param.device, param.dtype)
            return self.forward_all(images, prompt=prompt, prompt_mask=prompt_mask)
        finally:
            self.train(was_training)

    @staticmethod
    def mask(heatmaps: torch.Tensor | np.ndarray, threshold: float = 40.0) -> np.ndarray:
        """Binary uint8 masks ``round(255 h) > threshold`` of heatmaps in [0, 1] (EvalMuse-Structure
        evaluate.py)."""
        if isinstance(heatmaps, torch.Tensor):
            heatmaps = heatmaps.detach().cpu().numpy()
        return heatmap_to_mask(heatmaps, threshold=threshold)


@register_model("t2i_structure_convnext")
def t2i_structure_convnext() -> T2IStructureConfig:
    """ConvNeXt-T encoder, image only, 448 input and 512 heatmaps as the RAHF-style baseline."""
    return T2IStructureConfig(backbone="convnext_tiny")


@register_model("t2i_structure_convnext_prompt")
def t2i_structure_convnext_prompt() -> T2IStructureConfig:
    """ConvNeXt-T encoder fused with 768-d prompt embeddings (e.g. CLIP ViT-L/14 text tokens)."""
    return T2IStructureConfig(backbone="convnext_tiny", prompt_dim=768)
