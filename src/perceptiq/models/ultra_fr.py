"""UltraR-IQA: full-reference region model of team 2077 Agent, VQualA 2025 ISRGC-Q (Li et al., ISRG-Q report,
2025, sec. 4.4).

Pipeline (Figs. 9-12): candidate regions are proposed on the HR reference; the SR image and its HR
reference go through one ConvNeXt backbone (frozen in the paper) with a feature pyramid network
(``torchvision.ops.FeaturePyramidNetwork``: 1 x 1 laterals to 256 channels, top-down upsample + add,
3 x 3 output convs, as Fig. 10); ``R`` regions sampled from the candidates are cut from every pyramid
level of both images with ``torchvision.ops.roi_align``; a difference-contrast block per level
(Fig. 11: feature subtraction, channel concatenation, a residual conv branch with CBAM attention)
compares them; the levels are fused by a strided convolution (Fig. 12: stride 3, padding 1) into one
latent vector per region; a score transformer over the regions, with Fourier + geometric encodings
of the box positions, outputs a 5-bin MOS histogram (softmax). Score = expected level,
``sum_c c p_c`` with c = 1..5 (higher = better). Inference averages the histograms of
``num_samplings`` random region draws (20 in the paper) from a generator seeded with ``seed``.

Training target (paper): the minimum-variance histogram of 21 integer ratings whose mean is the MOS
(:func:`perceptiq.losses.functional.min_variance_histogram`), with the KL divergence loss
(:func:`perceptiq.losses.functional.kl_divergence_loss` on :meth:`UltraFRModel.logits`); AdamW lr 1e-4,
weight decay 0.1, StepLR halving every 25 epochs. Inputs keep their original resolution (input
policy ``"full"``); SR and HR must have the same size (the paper pads the SR onto the HR at the
top-left corner).

Region proposal (deliberate replacement): the paper pre-computes Selective Search boxes (Uijlings
et al. 2013) on the HR image. Selective Search lives in ``opencv-contrib`` (a large optional
dependency whose output changes between OpenCV versions) and takes seconds per 2K image. Here
:func:`candidate_regions` is deterministic and dependency-free: multi-scale, multi-aspect sliding
boxes on the HR image, ranked by the variance of their luma (computed exactly from integral images),
with non-maximum suppression for spatial diversity. Ranking by variance follows the paper's own
motivation that texture-rich regions weigh most in perceived quality.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from perceptiq.errors import InputError
from perceptiq.functional._color import LUMA_BT601
from perceptiq.functional.patches import InputPolicy, grid_starts
from perceptiq.models._backbones import IMAGENET_MEAN, IMAGENET_STD, Normalise, create_backbone
from perceptiq.models._base import ModelConfig, QualityModel, register_family, register_model

__all__ = [
    "UltraFRConfig",
    "UltraFRModel",
    "sliding_boxes",
    "box_variances",
    "candidate_regions",
    "sample_regions",
    "box_encoding",
    "expected_level",
]


def sliding_boxes(
    height: int, width: int, sizes: Sequence[int], ratios: Sequence[float], stride: float = 0.5
) -> torch.Tensor:
    """Boxes ``(x1, y1, x2, y2)`` (end-exclusive pixels, float64) of a multi-scale sliding window, (K, 4).

    For each side ``s`` and aspect ratio ``r`` (height / width) the box is ``round(s sqrt(r))`` x
    ``round(s / sqrt(r))`` pixels, clipped to the image, moved by ``stride`` times its own sides; the
    last row/column is shifted to end at the border (:func:`perceptiq.functional.patches.grid_starts`).
    """
    if height < 1 or width < 1:
        raise InputError(f"image size must be positive, got {height} x {width}")
    if not sizes or not ratios or min(sizes) < 1 or min(ratios) <= 0 or not 0 < stride <= 1:
        raise InputError(f"need sizes >= 1, ratios > 0 and 0 < stride <= 1; got {sizes}, {ratios}, {stride}")
    out = []
    for s in sizes:
        for r in ratios:
            bh = min(height, max(1, round(s * math.sqrt(r))))
            bw = min(width, max(1, round(s / math.sqrt(r))))
            tops = grid_starts(height, bh, max(1, round(stride * bh)))
            lefts = grid_starts(width, bw, max(1, round(stride * bw)))
            t = torch.tensor(tops, dtype=torch.float64)[:, None].expand(-1, len(lefts)).reshape(-1)
            left = torch.tensor(lefts, dtype=torch.float64)[None, :].expand(len(tops), -1).reshape(-1)
            out.append(torch.stack([left, t, left + bw, t + bh], dim=1))
    return torch.cat(out)


def box_variances(gray: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Variance of ``gray`` (H, W) inside each integer box ``(x1, y1, x2, y2)`` (end-exclusive), (K,).

    Uses float64 integral images of ``g`` and ``g^2``: ``var = E[g^2] - E[g]^2`` (clamped at 0).
    """
    if gray.ndim != 2:
        raise InputError(f"gray must be (H, W), got {tuple(gray.shape)}")
    g = gray.to(torch.float64)
    s1 = F.pad(g.cumsum(0).cumsum(1), (1, 0, 1, 0))
    s2 = F.pad((g * g).cumsum(0).cumsum(1), (1, 0, 1, 0))
    x1, y1, x2, y2 = boxes.round().to(torch.int64).to(g.device).unbind(1)
    area = ((x2 - x1) * (y2 - y1)).to(torch.float64)

    def box_sum(s: torch.Tensor) -> torch.Tensor:
        return s[y2, x2] - s[y1, x2] - s[y2, x1] + s[y1, x1]

    mean = box_sum(s1) / area
    return (box_sum(s2) / area - mean * mean).clamp_min(0.0)


def candidate_regions(
    image: torch.Tensor,
    *,
    sizes: Sequence[int] = (128, 256, 512),
    ratios: Sequence[float] = (0.5, 1.0, 2.0),
    stride: float = 0.5,
    max_candidates: int = 256,
    iou_threshold: float = 0.5,
) -> torch.Tensor:
    """Deterministic candidate regions of one image (3, H, W) in [0, 1]: (K, 4) ``(x1, y1, x2, y2)`` float32.

    :func:`sliding_boxes` ranked by decreasing luma variance (:func:`box_variances`; ties keep the
    generation order), then non-maximum suppression at ``iou_threshold`` (``torchvision.ops.nms``), the
    first ``max_candidates`` kept. Replaces the paper's Selective Search (see the module docstring).
    """
    from torchvision.ops import nms

    if image.ndim != 3 or image.shape[0] != 3:
        raise InputError(f"image must be (3, H, W), got {tuple(image.shape)}")
    if max_candidates < 1 or not 0 < iou_threshold <= 1:
        raise InputError(
            f"need max_candidates >= 1 and 0 < iou_threshold <= 1; got {max_candidates}, {iou_threshold}"
        )
    h, w = image.shape[-2:]
    boxes = sliding_boxes(h, w, sizes, ratios, stride)
    weights = torch.tensor(LUMA_BT601, dtype=torch.float64, device=image.device)
    gray = (image.detach().to(torch.float64) * weights[:, None, None]).sum(0)
    order = torch.argsort(box_variances(gray, boxes).cpu(), descending=True, stable=True)
    boxes = boxes[order]
    rank_scores = torch.arange(boxes.shape[0], 0, -1, dtype=torch.float64)
    keep = nms(boxes, rank_scores, iou_threshold)[:max_candidates]
    return boxes[keep].to(torch.float32)


def sample_regions(num_candidates: int, count: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Indices of ``count`` regions among ``num_candidates``: without replacement when there are enough."""
    if num_candidates < 1 or count < 1:
        raise InputError(f"need num_candidates >= 1 and count >= 1, got {num_candidates} and {count}")
    if num_candidates >= count:
        return torch.randperm(num_candidates, generator=generator)[:count]
    return torch.randint(0, num_candidates, (count,), generator=generator)


def box_encoding(boxes: torch.Tensor, height: int, width: int, num_frequencies: int) -> torch.Tensor:
    """Geometric + Fourier encoding of boxes (R, 4) -> (R, 4 + 8 F).

    Geometry ``g = (cx / W, cy / H, w / W, h / H)`` in [0, 1], followed by ``sin(2^k pi g)`` and
    ``cos(2^k pi g)`` for k = 0..F-1.
    """
    x1, y1, x2, y2 = boxes.unbind(-1)
    geo = torch.stack(
        [(x1 + x2) / (2 * width), (y1 + y2) / (2 * height), (x2 - x1) / width, (y2 - y1) / height], -1
    )
    if num_frequencies <= 0:
        return geo
    freqs = math.pi * 2.0 ** torch.arange(num_frequencies, dtype=geo.dtype, device=geo.device)
    angles = (geo[..., None] * freqs).flatten(-2)
    return torch.cat([geo, torch.sin(angles), torch.cos(angles)], dim=-1)


def expected_level(histogram: torch.Tensor) -> torch.Tensor:
    """``sum_c c p_c`` over levels c = 1..L of histograms (B, L) -> (B,)."""
    levels = torch.arange(1, histogram.shape[-1] + 1, dtype=histogram.dtype, device=histogram.device)
    return (histogram * levels).sum(-1)


@dataclass
class UltraFRConfig(ModelConfig):
    """Configuration of :class:`UltraFRModel`.

    Attributes:
        backbone: timm ConvNeXt (or any ``features_only`` model); ``convnext_base`` in the paper.
        backbone_kwargs: extra ``timm.create_model`` arguments.
        freeze_backbone: keep the backbone parameters fixed (as in the paper).
        fpn_channels: FPN width (256 in Fig. 10).
        diff_channels: width of the difference-contrast blocks.
        roi_size: side of the ROI-aligned features.
        d_model, heads, layers, ff_dim, dropout: the score transformer.
        levels: histogram bins (MOS levels 1..levels).
        num_regions: regions per sampling (``N`` of Fig. 9; the paper gives no value).
        num_samplings: region draws averaged at inference (20 in the paper).
        seed: seed of the inference draws (training draws use the global torch RNG).
        region_sizes, region_ratios, region_stride, max_candidates, nms_iou: :func:`candidate_regions`.
        num_frequencies: Fourier frequencies of :func:`box_encoding`.
        mean, std: input normalisation.
        backbone_weights: optional local checkpoint of the backbone (loaded by timm).
    """

    family = "ultra_fr"
    backbone: str = "convnext_base"
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    freeze_backbone: bool = True
    fpn_channels: int = 256
    diff_channels: int = 64
    roi_size: int = 7
    d_model: int = 256
    heads: int = 8
    layers: int = 2
    ff_dim: int = 512
    dropout: float = 0.1
    levels: int = 5
    num_regions: int = 32
    num_samplings: int = 20
    seed: int = 0
    region_sizes: tuple[int, ...] = (128, 256, 512)
    region_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    region_stride: float = 0.5
    max_candidates: int = 256
    nms_iou: float = 0.5
    num_frequencies: int = 4
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    backbone_weights: str | None = None
    input_policy: InputPolicy = field(default_factory=InputPolicy)


class _CBAM(nn.Module):
    """Convolutional block attention (Woo et al. 2018): channel then spatial gating."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1)
        )
        self.spatial = nn.Conv2d(2, 1, 7, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.mlp(x.mean(dim=(-2, -1), keepdim=True)) + self.mlp(x.amax(dim=(-2, -1), keepdim=True))
        x = x * torch.sigmoid(gate)
        maps = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(maps))


class _DifferenceBlock(nn.Module):
    """Fig. 11: concat(SR - HR, SR, HR) -> 1 x 1 conv, plus a residual 3 x 3 conv + CBAM branch."""

    def __init__(self, channels: int, out: int) -> None:
        super().__init__()
        self.reduce = nn.Sequential(nn.Conv2d(3 * channels, out, 1), nn.GELU())
        self.branch = nn.Sequential(nn.Conv2d(out, out, 3, padding=1), nn.GELU(), _CBAM(out))

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        x = self.reduce(torch.cat([sr - hr, sr, hr], dim=1))
        return x + self.branch(x)


@register_family("ultra_fr")
class UltraFRModel(QualityModel):
    """SR/HR region comparison with a score transformer over regions and a 5-bin MOS histogram."""

    config_class = UltraFRConfig
    needs_reference = True
    score_range = (1.0, 5.0)

    def __init__(self, config: UltraFRConfig) -> None:
        super().__init__(config)
        from torchvision.ops import FeaturePyramidNetwork

        if config.d_model % config.heads:
            raise InputError(f"heads={config.heads} does not divide d_model={config.d_model}")
        if config.levels < 2 or config.num_regions < 1 or config.num_samplings < 1 or config.roi_size < 1:
            raise InputError("need levels >= 2, num_regions >= 1, num_samplings >= 1 and roi_size >= 1")
        self.score_range = (1.0, float(config.levels))
        self.normalise = Normalise(config.mean, config.std)
        self.backbone = create_backbone(
            config.backbone, config.backbone_kwargs, config.backbone_weights, features_only=True
        )
        if config.freeze_backbone:
            self.backbone.requires_grad_(False)
        channels = list(self.backbone.feature_info.channels())
        self.strides = [int(r) for r in self.backbone.feature_info.reduction()]
        self.fpn = FeaturePyramidNetwork(channels, config.fpn_channels)
        self.difference = nn.ModuleList(
            _DifferenceBlock(config.fpn_channels, config.diff_channels) for _ in channels
        )
        fused = (config.roi_size + 2 - 3) // 3 + 1
        self.fusion = nn.Sequential(
            nn.Conv2d(len(channels) * config.diff_channels, config.diff_channels, 3, stride=3, padding=1),
            nn.GELU(),
            nn.Flatten(),
            nn.Linear(config.diff_channels * fused * fused, config.d_model),
        )
        self.position = nn.Linear(4 + 8 * config.num_frequencies, config.d_model)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.d_model))
        layer = nn.TransformerEncoderLayer(
            config.d_model, config.heads, config.ff_dim, config.dropout, batch_first=True, norm_first=True
        )
        self.transformer = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.out = nn.Sequential(nn.LayerNorm(config.d_model), nn.Linear(config.d_model, config.levels))

    def candidates(self, reference: torch.Tensor) -> list[torch.Tensor]:
        """Candidate boxes (K_i, 4) of each reference image of a (B, 3, H, W) batch."""
        cfg = self.config
        return [
            candidate_regions(
                ref,
                sizes=cfg.region_sizes,
                ratios=cfg.region_ratios,
                stride=cfg.region_stride,
                max_candidates=cfg.max_candidates,
                iou_threshold=cfg.nms_iou,
            )
            for ref in reference
        ]

    def pyramids(
        self, images: torch.Tensor, reference: torch.Tensor
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """FPN features of the SR images and of the references (one backbone pass over both)."""
        both = self.normalise(torch.cat([images, reference]))
        feats = self.fpn({str(i): f for i, f in enumerate(self.backbone(both))})
        b = images.shape[0]
        levels = list(feats.values())
        return [f[:b] for f in levels], [f[b:] for f in levels]

    def region_logits(
        self, sr: list[torch.Tensor], hr: list[torch.Tensor], boxes: torch.Tensor, size: tuple[int, int]
    ) -> torch.Tensor:
        """Histogram logits (B, D, levels) of D draws of R boxes per image, ``boxes`` (B, D, R, 4).

        The ROIs of all draws of one image are aligned in one call; each draw is one sequence of the
        score transformer.
        """
        from torchvision.ops import roi_align

        cfg = self.config
        b, d, r, _ = boxes.shape
        boxes = boxes.to(sr[0].dtype)
        rois = list(boxes.reshape(b, d * r, 4))
        diffs = []
        for level, (fs, fh) in enumerate(zip(sr, hr, strict=True)):
            scale = 1.0 / self.strides[level]
            x = roi_align(fs, rois, cfg.roi_size, spatial_scale=scale, sampling_ratio=2, aligned=True)
            y = roi_align(fh, rois, cfg.roi_size, spatial_scale=scale, sampling_ratio=2, aligned=True)
            diffs.append(self.difference[level](x, y))
        latent = self.fusion(torch.cat(diffs, dim=1)).view(b * d, r, cfg.d_model)
        geometry = box_encoding(boxes.reshape(b * d, r, 4), size[0], size[1], cfg.num_frequencies)
        tokens = latent + self.position(geometry)
        tokens = torch.cat([self.cls_token.expand(b * d, -1, -1), tokens], dim=1)
        return self.out(self.transformer(tokens)[:, 0]).view(b, d, cfg.levels)

    def _draws(
        self, candidates: list[torch.Tensor], count: int, generators: list[torch.Generator | None]
    ) -> torch.Tensor:
        """Boxes (B, count, R, 4): draw after draw, image b from ``generators[b]``."""
        draws = [
            torch.stack(
                [
                    c[sample_regions(c.shape[0], self.config.num_regions, g)]
                    for c, g in zip(candidates, generators, strict=True)
                ]
            )
            for _ in range(count)
        ]
        return torch.stack(draws, dim=1)

    def _check(self, images: torch.Tensor, reference: torch.Tensor | None) -> torch.Tensor:
        if reference is None:
            raise InputError("ultra_fr is full-reference: pass the HR reference images as reference=")
        if reference.shape != images.shape:
            raise InputError(f"SR shape {tuple(images.shape)} differs from HR shape {tuple(reference.shape)}")
        return reference

    def logits(
        self, images: torch.Tensor, reference: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Histogram logits (B, levels) of one region draw (training: KL to the min-variance histogram)."""
        reference = self._check(images, reference)
        sr, hr = self.pyramids(images, reference)
        candidates = self.candidates(reference)
        boxes = self._draws(candidates, 1, [generator] * len(candidates))
        return self.region_logits(sr, hr, boxes, tuple(images.shape[-2:]))[:, 0]

    def histogram(
        self,
        images: torch.Tensor,
        reference: torch.Tensor,
        *,
        num_samplings: int | None = None,
        seed: int | None = None,
        max_rois: int = 1024,
    ) -> torch.Tensor:
        """MOS histogram (B, levels): mean of the softmax over ``num_samplings`` seeded region draws.

        The pyramids are computed once; the draws run through the region head in chunks of at most
        ``max_rois`` regions (all images together).
        """
        reference = self._check(images, reference)
        n = self.config.num_samplings if num_samplings is None else num_samplings
        if n < 1:
            raise InputError(f"num_samplings must be >= 1, got {n}")
        seed = self.config.seed if seed is None else seed
        sr, hr = self.pyramids(images, reference)
        candidates = self.candidates(reference)
        # One generator per image: an image's draws, hence its score, do not depend on its batch.
        boxes = self._draws(candidates, n, [torch.Generator().manual_seed(seed) for _ in candidates])
        size = tuple(images.shape[-2:])
        chunk = max(1, max_rois // (boxes.shape[0] * boxes.shape[2]))
        probs = [
            torch.softmax(self.region_logits(sr, hr, boxes[:, i : i + chunk], size), dim=-1)
            for i in range(0, n, chunk)
        ]
        return torch.cat(probs, dim=1).mean(dim=1)

    def forward(self, images: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        """Expected MOS level (B,) in [1, levels]: one random draw in training, the seeded average in eval."""
        reference = self._check(images, reference)
        if self.training:
            return expected_level(torch.softmax(self.logits(images, reference), dim=-1))
        return expected_level(self.histogram(images, reference))


@register_model("ultra_fr_convnext_base")
def ultra_fr_convnext_base() -> UltraFRConfig:
    """ConvNeXt-Base backbone, frozen, as in the paper."""
    return UltraFRConfig(backbone="convnext_base")


@register_model("ultra_fr_convnext_tiny")
def ultra_fr_convnext_tiny() -> UltraFRConfig:
    """ConvNeXt-Tiny backbone (the paper's lighter option)."""
    return UltraFRConfig(backbone="convnext_tiny")
