"""Hybrid ViT + CNN quality model of team MICV, VQualA 2025 ISRGC-Q (Li et al., ISRG-Q report, 2025, sec.
4.1, Fig. 3).

The SR image alone (no LR/HR reference) goes through a ViT; its patch tokens pass a self-attention
block, a transposed self-attention block, and a third self-attention block, are laid back on the
token grid, encoded by convolution layers, pooled, and mapped by linear layers and a sigmoid to a
score in [0, 1] (higher = better; train on MOS rescaled to [0, 1], e.g. ``(MOS - 1) / 4``).

"Transposed" self-attention (attention along the other axis of the token matrix) is implemented as
cross-covariance attention (XCiT, El-Nouby et al. 2021, sec. 3.2; ``timm.models.xcit.XCA``): a
``d x d`` attention map between feature channels computed over all tokens, which works for any token
count, whereas literally transposing the (N, d) token matrix would tie the layer width to the image
size. The paper does not give widths or depths; the defaults here are ours.

Training (paper): random 448 x 448 crops and horizontal flips, AdamW lr 1e-5, cosine schedule,
loss = PLCC loss + SRCC loss (1:1) (:class:`perceptiq.losses.PLCCLoss`, :class:`perceptiq.losses.SRCCLoss`).
Testing (paper): a 448 x 448 centre crop. :meth:`HybridViTCNN.forward` cuts that centre crop itself
when ``center_crop`` is set and the input is larger (a no-op on 448 training crops), so the default
``"full"`` input policy reproduces the paper's test; ``POLICIES["micv_tiles_448"]`` of
:mod:`perceptiq.models.policies` averages over tiles instead. The ViT is built with timm's dynamic
image size and padding, so smaller or non-multiple-of-patch inputs also work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from perceptiq.errors import InputError
from perceptiq.functional.patches import InputPolicy
from perceptiq.models._backbones import IMAGENET_MEAN, IMAGENET_STD, Normalise, create_backbone
from perceptiq.models._base import ModelConfig, QualityModel, register_family, register_model

__all__ = ["HybridViTCNNConfig", "HybridViTCNN", "TransposedAttentionBlock", "center_crop"]


def center_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """The central ``min(size, H) x min(size, W)`` window of (B, C, H, W) images (a view)."""
    h, w = images.shape[-2:]
    ch, cw = min(size, h), min(size, w)
    top, left = (h - ch) // 2, (w - cw) // 2
    return images[..., top : top + ch, left : left + cw]


@dataclass
class HybridViTCNNConfig(ModelConfig):
    """Configuration of :class:`HybridViTCNN`.

    Attributes:
        backbone: timm ViT name (any ``VisionTransformer`` with ``forward_features``).
        backbone_kwargs: extra ``timm.create_model`` arguments (e.g. ``depth``/``embed_dim`` for tests).
        input_size: training crop side and test centre-crop side (448 in the paper).
        center_crop: cut the centre ``input_size`` square of larger inputs in :meth:`HybridViTCNN.forward`.
        heads: attention heads of the three head blocks (must divide the ViT width).
        mlp_ratio: MLP width of the head blocks relative to the ViT width.
        conv_channels: output channels of the convolution layers (3 x 3; every layer after the first
            has stride 2).
        hidden: width of the hidden linear layer before the output.
        dropout: dropout before the linear layers.
        mean, std: input normalisation of the ViT.
        backbone_weights: optional local checkpoint of the ViT (loaded by timm).
    """

    family = "hybrid_vit_cnn"
    backbone: str = "vit_base_patch16_224"
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    input_size: int = 448
    center_crop: bool = True
    heads: int = 8
    mlp_ratio: float = 2.0
    conv_channels: tuple[int, ...] = (256, 128)
    hidden: int = 64
    dropout: float = 0.1
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    backbone_weights: str | None = None
    input_policy: InputPolicy = field(default_factory=InputPolicy)


class TransposedAttentionBlock(nn.Module):
    """Pre-norm residual block: cross-covariance ("transposed") attention, then an MLP; tokens (B, N, d)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        from timm.layers import Mlp
        from timm.models.xcit import XCA

        self.norm1 = nn.LayerNorm(dim)
        self.attn = XCA(dim, num_heads=heads, qkv_bias=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, hidden_features=int(dim * mlp_ratio))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = tokens + self.attn(self.norm1(tokens))
        return tokens + self.mlp(self.norm2(tokens))


@register_family("hybrid_vit_cnn")
class HybridViTCNN(QualityModel):
    """ViT tokens -> self-attn -> transposed self-attn -> self-attn -> grid convs -> linear -> sigmoid."""

    config_class = HybridViTCNNConfig
    score_range = (0.0, 1.0)

    def __init__(self, config: HybridViTCNNConfig) -> None:
        super().__init__(config)
        from timm.models.vision_transformer import Block

        self.normalise = Normalise(config.mean, config.std)
        self.backbone = create_backbone(
            config.backbone,
            config.backbone_kwargs,
            config.backbone_weights,
            num_classes=0,
            img_size=config.input_size,
            dynamic_img_size=True,
            dynamic_img_pad=True,
        )
        if not hasattr(self.backbone, "patch_embed") or not hasattr(self.backbone, "num_prefix_tokens"):
            raise InputError(f"backbone {config.backbone!r} is not a timm VisionTransformer")
        dim = self.backbone.embed_dim
        if dim % config.heads:
            raise InputError(f"heads={config.heads} does not divide the ViT width {dim}")
        if not config.conv_channels:
            raise InputError("conv_channels needs at least one layer")
        self.attn1 = Block(dim, config.heads, mlp_ratio=config.mlp_ratio, qkv_bias=True)
        self.attn2 = TransposedAttentionBlock(dim, config.heads, config.mlp_ratio)
        self.attn3 = Block(dim, config.heads, mlp_ratio=config.mlp_ratio, qkv_bias=True)
        layers: list[nn.Module] = []
        width = dim
        for i, out in enumerate(config.conv_channels):
            layers += [nn.Conv2d(width, out, 3, stride=1 if i == 0 else 2, padding=1), nn.GELU()]
            width = out
        self.convs = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(config.dropout),
            nn.Linear(width, config.hidden),
            nn.GELU(),
            nn.Linear(config.hidden, 1),
        )

    def forward_tokens(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """(B, 3, h, w) in [0, 1] -> refined patch tokens (B, N, d) and their grid (gh, gw)."""
        x = center_crop(images, self.config.input_size) if self.config.center_crop else images
        x = self.normalise(x)
        grid = self.backbone.patch_embed.dynamic_feat_size(tuple(x.shape[-2:]))
        tokens = self.backbone.forward_features(x)[:, self.backbone.num_prefix_tokens :]
        return self.attn3(self.attn2(self.attn1(tokens))), (int(grid[0]), int(grid[1]))

    def forward(self, images: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        tokens, (gh, gw) = self.forward_tokens(images)
        fmap = tokens.transpose(1, 2).reshape(tokens.shape[0], -1, gh, gw)
        pooled = self.convs(fmap).mean(dim=(-2, -1))
        return torch.sigmoid(self.head(pooled)).squeeze(-1)


@register_model("hybrid_vit_cnn_micv")
def hybrid_vit_cnn_micv() -> HybridViTCNNConfig:
    """ViT-B/16 at 448 (the paper names no ViT size; table 1 lists 6M parameters and 1000 GFLOPs)."""
    return HybridViTCNNConfig(backbone="vit_base_patch16_224", heads=12)


@register_model("hybrid_vit_cnn_small")
def hybrid_vit_cnn_small() -> HybridViTCNNConfig:
    """ViT-S/16 at 448: a lighter variant of the same design."""
    return HybridViTCNNConfig(backbone="vit_small_patch16_224", heads=6, conv_channels=(192, 96))
