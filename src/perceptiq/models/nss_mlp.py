"""Blind quality from natural-scene statistics and a small MLP ensemble: perceptiq's default NR model.

A fixed, parameter-free descriptor (:func:`perceptiq.functional.nr.quality_features.quality_features`:
multi-scale BRISQUE statistics of luminance and opponent colour, exposure, sharpness, spectrum,
noise and blocking cues; Mittal et al. 2012, Ghadiyaram & Bovik 2017) is standardised with the
training set's statistics and mapped to quality by the mean of ``n_members`` small MLPs trained from
different seeds (a deep-ensemble average). Everything learned is in the MLPs (a few thousand
parameters each); the descriptor costs a few convolutions and an FFT per scale.

Resolution policy: images whose shorter side exceeds ``short_side`` are first resized (aspect ratio
kept, antialiased) to that shorter side, the scale of the training images (CLIVE: 500 x 500), so 2K,
4K and 8K inputs are judged at the scale the model learned. Smaller images are used as they are
(at least 64 x 64). Scores are on the training MOS scale (CLIVE: 0-100), higher = better, and are
clipped to ``mos_range`` outside training: the MLPs extrapolate linearly far from the training
images (plain white, black and grey images land a few hundred below 0), and a score outside the
scale has no meaning on it.

Views: :meth:`NSSMLPModel.features` also describes fixed views of the resized image (mirror image and
corner crops, :func:`perceptiq.functional.patches.image_view`). Training can draw each image as one of
several views (``data.descriptor_views`` of the trainer); ``test_views`` averages the head's output over
views at test time (each extra view costs one more descriptor).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from perceptiq.errors import InputError
from perceptiq.functional.nr.quality_features import DESCRIPTOR_VERSION, FEATURE_DIM, quality_features
from perceptiq.functional.patches import IMAGE_VIEWS, InputPolicy, image_view
from perceptiq.models._base import ModelConfig, register_family, register_model
from perceptiq.models._descriptor_head import DescriptorEnsembleModel

__all__ = ["NSSMLPConfig", "NSSMLPModel", "resize_short_side"]


@dataclass
class NSSMLPConfig(ModelConfig):
    """Configuration of :class:`NSSMLPModel`.

    Attributes:
        hidden: hidden width of each member MLP.
        dropout: dropout on the input features and the hidden layer (training only).
        n_members: number of MLPs averaged.
        short_side: larger images are resized to this shorter side before the descriptor.
        mos_range: range of the training MOS scale (``score_range``); scores are clipped to it in
            eval mode.
        crop_fraction: side of the corner-crop views as a fraction of the resized image's sides.
        test_views: views whose head outputs are averaged when scoring images (``full`` = no averaging).
    """

    family = "nss_mlp"
    hidden: int = 64
    dropout: float = 0.2
    n_members: int = 5
    short_side: int = 512
    mos_range: tuple[float, float] = (0.0, 100.0)
    crop_fraction: float = 0.9
    test_views: tuple[str, ...] = ("full",)
    input_policy: InputPolicy = field(default_factory=InputPolicy)


def resize_short_side(images: torch.Tensor, short_side: int) -> torch.Tensor:
    """Antialiased bicubic resize so that min(H, W) == ``short_side`` when it is larger; else unchanged."""
    h, w = images.shape[-2:]
    if min(h, w) <= short_side:
        return images
    scale = short_side / min(h, w)
    size = (max(short_side, round(h * scale)), max(short_side, round(w * scale)))
    return F.interpolate(images, size=size, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)


@register_family("nss_mlp")
class NSSMLPModel(DescriptorEnsembleModel):
    """Descriptor -> standardisation (buffers) -> mean of member MLPs -> MOS scale (buffers)."""

    config_class = NSSMLPConfig

    def __init__(self, config: NSSMLPConfig) -> None:
        super().__init__(config)
        unknown = [v for v in config.test_views if v not in IMAGE_VIEWS]
        if unknown or not config.test_views:
            choices = ", ".join(IMAGE_VIEWS)
            raise InputError(f"test_views must name views among {choices}, got {config.test_views}")
        self._build_head(FEATURE_DIM)

    def features(self, images: torch.Tensor, view: str = "full") -> torch.Tensor:
        """The fixed descriptor (B, FEATURE_DIM) of one view of images (B, 3, H, W) in [0, 1].

        The view (``full``, ``hflip`` or a corner crop) is taken after the resize policy.
        """
        resized = resize_short_side(images, self.config.short_side)
        return quality_features(image_view(resized, view, self.config.crop_fraction))

    @property
    def descriptor_id(self) -> str:
        """What :meth:`features` computes (the key of cached descriptors, perceptiq.training.descriptors)."""
        return f"quality_features-v{DESCRIPTOR_VERSION}-d{FEATURE_DIM}-short{self.config.short_side}"

    def view_id(self, view: str) -> str:
        """Name of a view with its parameters (part of the key of cached view descriptors)."""
        return f"{view}-{self.config.crop_fraction:g}" if view.startswith("crop") else view

    def standardised_scores(self, images: torch.Tensor) -> torch.Tensor:
        """Mean head output over ``config.test_views`` (one descriptor per view)."""
        return torch.stack([self.head(self.features(images, v)) for v in self.config.test_views]).mean(0)


@register_model("nss_mlp")
def nss_mlp() -> NSSMLPConfig:
    """The default architecture (random heads; use ``perceptiq_nr`` for the trained weights)."""
    return NSSMLPConfig()


@register_model("perceptiq_nr", packaged_weights="perceptiq_nr", licence="Apache-2.0")
def perceptiq_nr() -> NSSMLPConfig:
    """perceptiq's default no-reference model, trained on the CLIVE development split (see its model card)."""
    return NSSMLPConfig()
