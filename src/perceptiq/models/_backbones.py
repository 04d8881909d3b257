"""timm backbones built from config: never downloaded, optionally loaded from a local checkpoint.

Local weights go through timm's own loader (``pretrained_cfg_overlay=dict(file=...)``), which drops
a classifier that does not fit, renames keys for ``features_only`` wrappers and resamples ViT
position embeddings to another input size.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from perceptiq.errors import InputError
from perceptiq.models._base import WeightsError
from perceptiq.models._weights_file import read_state_dict

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "create_backbone",
    "check_checkpoint_keys",
    "fold_batch_norm",
    "Normalise",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""Per-channel mean of the ImageNet training images (RGB in [0, 1]), torchvision's and timm's default."""
IMAGENET_STD = (0.229, 0.224, 0.225)
"""Per-channel standard deviation matching :data:`IMAGENET_MEAN`."""


def create_backbone(
    name: str, options: dict[str, Any], weights: str | None = None, **fixed: Any
) -> nn.Module:
    """``timm.create_model(name, **fixed, **options)`` without downloading; ``weights`` a local file.

    Args:
        name: timm model name.
        options: user keyword arguments of the config (``backbone_kwargs``), applied last.
        weights: optional local checkpoint (``.pth``/``.bin``/``.safetensors`` state dict saved by timm).
        fixed: keyword arguments the family needs (``num_classes=0``, ``features_only=True``, ...).
    """
    import timm

    if not timm.is_model(name):
        raise InputError(f"unknown timm model {name!r} (see timm.list_models())")
    kwargs = {**fixed, **options}
    if weights is None:
        return timm.create_model(name, pretrained=False, **kwargs)
    path = Path(weights)
    if not path.is_file():
        raise WeightsError(f"{path}: backbone weights not found")
    check_checkpoint_keys(name, options, path)
    try:
        return timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": str(path)}, **kwargs)
    except (RuntimeError, KeyError, ValueError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise WeightsError(f"{path}: does not fit timm backbone {name!r} ({first})") from None


def check_checkpoint_keys(name: str, options: dict[str, Any], path: Path) -> None:
    """Raise :class:`WeightsError` unless the checkpoint's keys are those of timm model ``name``.

    timm's own loader turns strict checking off whenever it drops a classifier, so a checkpoint of
    another architecture would load nothing without an error. The keys are compared with those of the
    plain model (built on the meta device, so nothing is allocated); classifier keys may differ.
    """
    import timm

    state = read_state_dict(path, error=WeightsError)
    plain = timm.create_model(name, pretrained=False, device="meta", **options)
    classifier = plain.pretrained_cfg.get("classifier") or ()
    prefixes = tuple(f"{c}." for c in ((classifier,) if isinstance(classifier, str) else classifier))
    own = set(plain.state_dict())
    missing = sorted(k for k in own - set(state) if not k.startswith(prefixes))
    unexpected = sorted(k for k in set(state) - own if not k.startswith(prefixes))
    if missing or unexpected:
        raise WeightsError(
            f"{path}: does not fit timm backbone {name!r} ({len(missing)} missing key(s), e.g. "
            f"{missing[:3]}; {len(unexpected)} unexpected key(s), e.g. {unexpected[:3]})"
        )


def fold_batch_norm(network: nn.Module) -> nn.Module:
    """An inference copy of ``network`` with every batch norm folded into the convolution before it.

    ``BN(conv(x)) = conv'(x)`` with ``w' = w gamma / sqrt(var + eps)`` and
    ``b' = (b - mean) gamma / sqrt(var + eps) + beta`` (running statistics; torch's
    ``fuse_conv_bn_eval``). A ``Conv2d`` and a ``BatchNorm2d`` over its output channels are folded when
    they are consecutive children of one module, the layout of timm's EfficientNet, MobileNet and ResNet
    blocks (``conv_pw, bn1, conv_dw, bn2, ...``); timm's ``BatchNormAct2d`` leaves its activation in
    its place. Same outputs to float rounding, one pass over each feature map fewer. ``network`` is left
    unchanged; the copy is in eval mode, for inference only (it has no batch-norm layers to train).
    """
    folded = copy.deepcopy(network).eval()
    for parent in list(folded.modules()):
        children = list(parent.named_children())
        for (conv_name, conv), (norm_name, norm) in zip(children, children[1:], strict=False):
            if (
                isinstance(conv, nn.Conv2d)
                and isinstance(norm, nn.BatchNorm2d)
                and norm.num_features == conv.out_channels
                and norm.track_running_stats
            ):
                setattr(parent, conv_name, fuse_conv_bn_eval(conv, norm))
                activation = getattr(norm, "act", None)
                setattr(parent, norm_name, activation if isinstance(activation, nn.Module) else nn.Identity())
    return folded


class Normalise(nn.Module):
    """``(x - mean) / std`` per channel, for images in [0, 1]; the constants are not saved."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std
