"""Blind quality from the pooled statistics of a frozen ImageNet network: perceptiq_nr v2.

Descriptor: the images, normalised for a pretrained backbone (:mod:`perceptiq.models.pretrained`, by
default the ImageNet EfficientNet-Lite0 that ships in a pip package), run once through the frozen
network; the output of every block (``stages``) is summarised per channel by its spatial mean and the
logarithm of its spatial standard deviation
(:func:`perceptiq.functional.features.multiscale_features`): fine texture from early blocks, content
from late ones, in one fixed-length vector at any input size. Pooled first- and second-order feature
statistics of a pretrained CNN as a quality descriptor follow Su et al., Blindly Assess Image Quality in
the Wild Guided by a Self-Adaptive Hyper Network (HyperIQA), CVPR 2020, and Li et al., Norm-in-Norm
Loss, ACM MM 2020; the per-block mean/log-deviation summary is ours. The learned part is the MLP
ensemble head of :mod:`perceptiq.models._descriptor_head` (standardisation, mean of ``n_members`` MLPs,
MOS scale, clipped to ``mos_range``).

Resolution policy (no resizing, which would remove the artefacts the model must see): images of at most
``max_pixels`` pixels are described whole at their native resolution (CLIVE's 500 x 500 training
images, Kodak's 768 x 512); larger ones are scored as the mean head output over ``crop_grid`` x
``crop_grid`` native-resolution crops of ``crop_size`` pixels spread evenly from corner to corner
(:func:`perceptiq.functional.patches.spread_boxes`), so the cost stays bounded at 2K, 4K and 8K.
Scores are on the training MOS scale (CLIVE: 0-100), higher = better. The backbone is frozen: training
fits the head on cached descriptors (``data.descriptor_cache``), and :meth:`train` keeps the backbone's
batch-norm layers in eval mode.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from perceptiq.errors import InputError
from perceptiq.functional.features import multiscale_features
from perceptiq.functional.patches import IMAGE_VIEWS, InputPolicy, crop_boxes, image_view, spread_boxes
from perceptiq.models._backbones import fold_batch_norm
from perceptiq.models._base import (
    ModelConfig,
    check_dtype,
    gpu_dtype,
    initial_weights_wanted,
    register_family,
    register_model,
)
from perceptiq.models._descriptor_head import DescriptorEnsembleModel
from perceptiq.models.pretrained import get_pretrained_backbone, load_pretrained_backbone

__all__ = ["BackboneStatsConfig", "BackboneStatsModel", "EFFICIENTNET_LITE0_BLOCKS"]

EFFICIENTNET_LITE0_BLOCKS: tuple[str, ...] = tuple(
    f"blocks.{stage}.{block}" for stage, depth in enumerate((1, 2, 2, 3, 3, 4, 1)) for block in range(depth)
)
"""The 16 inverted-residual blocks of EfficientNet-Lite0 (timm names), strides 2 to 32."""

DESCRIPTOR_VERSION = 1
"""Bumped whenever :meth:`BackboneStatsModel.features` changes for the same config (cache key)."""


@dataclass
class BackboneStatsConfig(ModelConfig):
    """Configuration of :class:`BackboneStatsModel`.

    Attributes:
        pretrained_backbone: a registered pretrained backbone (``perceptiq.models.pretrained``).
        stages: submodules of the backbone whose outputs are pooled, in order.
        log_std_offset: the descriptor holds ``log(std + log_std_offset)`` of each channel.
        hidden, dropout, n_members: width, dropout and number of the head's MLPs.
        mos_range: range of the training MOS scale (``score_range``); scores are clipped to it in eval mode.
        max_pixels: larger images are scored by crops.
        crop_size, crop_grid: side of the test crops and crops per side (``crop_grid ** 2`` crops).
        crop_fraction: side of the corner-crop training views as a fraction of the image's sides.
        dtype: ``"float32"``; ``"float16"`` or ``"bfloat16"`` run the frozen backbone in half precision
            on a GPU (CPU stays float32); the pooled statistics and the head stay float32.
    """

    family = "backbone_stats_mlp"
    pretrained_backbone: str = "efficientnet_lite0.imagenet"
    stages: tuple[str, ...] = EFFICIENTNET_LITE0_BLOCKS
    log_std_offset: float = 1e-3
    hidden: int = 64
    dropout: float = 0.3
    n_members: int = 5
    mos_range: tuple[float, float] = (0.0, 100.0)
    max_pixels: int = 768 * 512
    crop_size: int = 512
    crop_grid: int = 2
    crop_fraction: float = 0.9
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    input_policy: InputPolicy = field(default_factory=InputPolicy)


def _frozen_backbone(config: BackboneStatsConfig) -> nn.Module:
    """The backbone without classifier and final 1x1 convolution (only its blocks are pooled), frozen."""
    import timm

    entry = get_pretrained_backbone(config.pretrained_backbone)
    if initial_weights_wanted():
        network = load_pretrained_backbone(entry.name, num_classes=0)
    else:
        network = timm.create_model(entry.timm_name, pretrained=False, num_classes=0)
    for unused in ("conv_head", "bn2"):
        if hasattr(network, unused):
            setattr(network, unused, nn.Identity())
    return network.requires_grad_(False).eval()


@register_family("backbone_stats_mlp")
class BackboneStatsModel(DescriptorEnsembleModel):
    """Frozen backbone -> per-block mean / log-std -> MLP ensemble head -> MOS scale."""

    config_class = BackboneStatsConfig

    def __init__(self, config: BackboneStatsConfig) -> None:
        super().__init__(config)
        if not config.stages:
            raise InputError("backbone_stats_mlp needs at least one stage")
        if config.crop_size < 32 or config.crop_grid < 1 or config.max_pixels < 1:
            raise InputError(
                f"backbone_stats_mlp needs crop_size >= 32, crop_grid >= 1 and max_pixels >= 1; got "
                f"{config.crop_size}, {config.crop_grid}, {config.max_pixels}"
            )
        check_dtype(config.dtype)
        entry = get_pretrained_backbone(config.pretrained_backbone)
        self.backbone = _frozen_backbone(config)
        self._inference_copy: tuple[tuple, nn.Module] | None = None
        self.register_buffer("input_mean", torch.tensor(entry.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("input_std", torch.tensor(entry.std).view(1, 3, 1, 1), persistent=False)
        with torch.no_grad():
            probe = multiscale_features(self.backbone, torch.zeros(1, 3, 64, 64), config.stages)
        self._build_head(probe.shape[1])

    def train(self, mode: bool = True) -> BackboneStatsModel:
        """Train mode for the head only: the frozen backbone's batch norm keeps its ImageNet statistics."""
        super().train(mode)
        self.backbone.eval()
        return self

    def backbone_dtype(self) -> torch.dtype:
        """The dtype of the backbone's pass: the config's ``dtype`` on a GPU, float32 elsewhere."""
        return gpu_dtype(self.config.dtype, self.input_mean.device)

    def inference_backbone(self) -> nn.Module:
        """The frozen backbone as it runs in :meth:`features`: batch norm folded into the convolutions
        (:func:`~perceptiq.models._backbones.fold_batch_norm`), channels-last memory and
        :meth:`backbone_dtype`; about twice as fast on CPU with the same descriptor to float rounding. A
        copy, rebuilt whenever a weight or buffer of the backbone is replaced or written in place (a
        weight load, a move to another device or dtype): the key is each tensor's storage and version."""
        dtype = self.backbone_dtype()
        tensors = itertools.chain(self.backbone.parameters(), self.backbone.buffers())
        key = (dtype, *((t.data_ptr(), t.dtype, t._version) for t in tensors))
        if self._inference_copy is None or self._inference_copy[0] != key:
            network = fold_batch_norm(self.backbone).to(dtype=dtype, memory_format=torch.channels_last)
            self._inference_copy = (key, network)
        return self._inference_copy[1]

    @property
    def descriptor_id(self) -> str:
        """What :meth:`features` computes (the key of cached descriptors, perceptiq.training.descriptors)."""
        cfg = self.config
        stages = hashlib.sha1(",".join(cfg.stages).encode()).hexdigest()[:8]
        version = f"backbone_stats-v{DESCRIPTOR_VERSION}"
        dtype = self.backbone_dtype()
        precision = "" if dtype == torch.float32 else "-" + str(dtype).removeprefix("torch.")
        return f"{version}-{cfg.pretrained_backbone}-{stages}-log{cfg.log_std_offset:g}{precision}"

    def view_id(self, view: str) -> str:
        """Name of a view with its parameters (part of the key of cached view descriptors)."""
        return f"{view}-{self.config.crop_fraction:g}" if view.startswith("crop") else view

    @torch.no_grad()
    def features(self, images: torch.Tensor, view: str = "full") -> torch.Tensor:
        """The descriptor (B, feature_dim) of one view (:data:`IMAGE_VIEWS`) of RGB images (B, 3, H, W)
        in [0, 1], at their native resolution."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise InputError(f"backbone_stats_mlp expects RGB images (B, 3, H, W), got {tuple(images.shape)}")
        if view not in IMAGE_VIEWS:
            raise InputError(f"unknown image view {view!r}; choose from {', '.join(IMAGE_VIEWS)}")
        x = image_view(images, view, self.config.crop_fraction)
        x = ((x.to(self.input_mean.dtype) - self.input_mean) / self.input_std).to(
            dtype=self.backbone_dtype(), memory_format=torch.channels_last
        )
        cfg = self.config
        return multiscale_features(self.inference_backbone(), x, cfg.stages, cfg.log_std_offset)

    def _described(self, images: torch.Tensor) -> torch.Tensor:
        """:meth:`features` of a batch; on CPU one image at a time, which is about twice as fast as a
        batch there (the depthwise convolutions of large maps are bound by memory traffic)."""
        if images.device.type != "cpu" or images.shape[0] == 1:
            return self.features(images)
        return torch.cat([self.features(image[None]) for image in images])

    def standardised_scores(self, images: torch.Tensor) -> torch.Tensor:
        """Head output of the whole image, or the mean over the crop grid of images above ``max_pixels``."""
        cfg = self.config
        h, w = images.shape[-2:]
        if h * w <= cfg.max_pixels:
            return self.head(self._described(images))
        boxes = spread_boxes(h, w, cfg.crop_size, cfg.crop_grid)
        crops = crop_boxes(images, boxes)  # box-major: row j * B + i is box j of image i
        return self.head(self._described(crops)).view(len(boxes), images.shape[0]).mean(0)


@register_model("backbone_stats_mlp")
def backbone_stats_mlp() -> BackboneStatsConfig:
    """ImageNet EfficientNet-Lite0 and an untrained head (``perceptiq_nr_v2`` is the trained model)."""
    return BackboneStatsConfig()


@register_model("perceptiq_nr_v2", packaged_weights="perceptiq_nr_v2", licence="Apache-2.0")
def perceptiq_nr_v2() -> BackboneStatsConfig:
    """perceptiq's default no-reference model (v2), trained on CLIVE (see its model card)."""
    return BackboneStatsConfig()
