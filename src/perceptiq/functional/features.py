"""Multi-scale descriptors of a network's feature maps: spatial mean and standard deviation per channel.

The statistics of several stages of a convolutional network summarise an image at several scales
(fine texture in early stages, content in late ones) in one fixed-length vector at any input size.
Channel mean and standard deviation are the feature statistics of Huang and Belongie, Arbitrary Style
Transfer in Real-time with Adaptive Instance Normalization, 2017; their concatenation over stages is ours.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from perceptiq.errors import InputError

__all__ = ["pooled_statistics", "multiscale_features"]


def pooled_statistics(feature_map: torch.Tensor, log_std_offset: float | None = None) -> torch.Tensor:
    """(B, C, H, W) -> (B, 2C): per channel the mean over H x W, then the population standard deviation
    (divisor H W; 0 for a 1 x 1 map), or ``log(std + log_std_offset)`` when an offset is given (the
    deviations of feature maps are heavy-tailed; their logarithm suits linear models and MLPs better)."""
    if feature_map.ndim != 4:
        raise InputError(
            f"pooled_statistics expects a feature map (B, C, H, W), got {tuple(feature_map.shape)}"
        )
    if log_std_offset is not None and log_std_offset <= 0:
        raise InputError(f"log_std_offset must be positive, got {log_std_offset}")
    # two passes (mean, then mean squared deviation) in any memory layout: as exact as torch.std's
    # Welford pass to float rounding and several times faster on CPU
    mean = feature_map.mean(dim=(2, 3), keepdim=True)
    deviation = feature_map - mean
    std = (deviation * deviation).mean(dim=(2, 3)).sqrt()
    if log_std_offset is not None:
        std = torch.log(std + log_std_offset)
    return torch.cat([mean.flatten(1), std], dim=1)


def multiscale_features(
    module: nn.Module, images: torch.Tensor, stages: Sequence[str], log_std_offset: float | None = None
) -> torch.Tensor:
    """Pooled statistics of the outputs of ``module``'s submodules ``stages`` for one forward pass.

    Args:
        module: the network; it is run once on ``images`` as given (normalise them first).
        images: its input batch (B, C, H, W).
        stages: dotted names of submodules (``module.get_submodule``), e.g. ``["blocks.1", "blocks.4"]``;
            each must return a (B, C, H, W) tensor.
        log_std_offset: see :func:`pooled_statistics`.

    Returns:
        (B, sum over stages of 2 C): :func:`pooled_statistics` of each stage's output, in the order given,
        in float32 at least (a float16 pass gives float32 statistics). Gradients flow unless the caller
        disables them.
    """
    if not stages:
        raise InputError("multiscale_features needs at least one stage")
    outputs: dict[str, torch.Tensor] = {}
    handles = []
    try:
        for name in stages:
            try:
                sub = module.get_submodule(name)
            except AttributeError:
                raise InputError(f"{type(module).__name__} has no submodule {name!r}") from None
            handles.append(
                sub.register_forward_hook(lambda _m, _i, out, name=name: outputs.__setitem__(name, out))
            )
        module(images)
    finally:
        for handle in handles:
            handle.remove()
    for name in stages:
        if not isinstance(outputs.get(name), torch.Tensor) or outputs[name].ndim != 4:
            raise InputError(
                f"stage {name!r} of {type(module).__name__} did not return a feature map (B, C, H, W)"
            )
    pooled = []
    for name in stages:
        out = outputs[name]  # a half-precision pass: its statistics in float32 (log of small deviations)
        out = out.to(torch.promote_types(out.dtype, torch.float32))
        pooled.append(pooled_statistics(out, log_std_offset))
    return torch.cat(pooled, dim=1)
