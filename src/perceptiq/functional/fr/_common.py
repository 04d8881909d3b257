"""Shared by the full-reference metrics: input checks, scaling, colour space, border crop; gradient maps."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from perceptiq.errors import InputError
from perceptiq.functional._color import ColorSpace, check_color, to_color_space

__all__ = ["check_options", "prepare_pair", "check_min_size", "gradient_magnitude", "similarity"]


def _check_tensor(x: object, what: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise InputError(f"{what} must have shape (B, C, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise InputError(f"{what} must be a float tensor, got dtype {x.dtype}")
    return x


def check_options(color: str, crop_border: int, data_range: float, metric: str) -> None:
    """Raise :class:`InputError` for an unknown ``color``, a negative or non-integer ``crop_border``
    or a non-positive ``data_range`` (the checks that need no image: a metric runs them when built)."""
    check_color(color, metric)
    if not isinstance(crop_border, int) or crop_border < 0:
        raise InputError(f"{metric}: crop_border must be a non-negative integer, got {crop_border!r}")
    if not data_range > 0:
        raise InputError(f"{metric}: data_range must be positive, got {data_range!r}")


def prepare_pair(
    image: torch.Tensor,
    reference: torch.Tensor,
    *,
    color: ColorSpace,
    crop_border: int,
    data_range: float,
    quantize: bool,
    metric: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a (distorted, reference) pair, scale it to [0, 1], convert colours and crop the border.

    ``image`` and ``reference`` are ``(B, C, H, W)`` with values in ``[0, data_range]``; the result
    is the pair in ``[0, 1]`` on the channels given by ``color`` with ``crop_border`` pixels removed
    on each side (the super-resolution convention: crop = scale factor).
    """
    x = _check_tensor(image, f"{metric}: image")
    y = _check_tensor(reference, f"{metric}: reference")
    if x.shape != y.shape:
        raise InputError(
            f"{metric}: image shape {tuple(x.shape)} differs from reference shape {tuple(y.shape)}"
        )
    check_options(color, crop_border, data_range, metric)
    if 2 * crop_border >= min(x.shape[-2:]):
        raise InputError(
            f"{metric}: crop_border={crop_border} must leave pixels of a {x.shape[-2]}x{x.shape[-1]} image"
        )
    if data_range != 1.0:
        x, y = x / data_range, y / data_range
    x = to_color_space(x, color, quantize=quantize)
    y = to_color_space(y, color, quantize=quantize)
    if crop_border:
        c = crop_border
        x, y = x[..., c:-c, c:-c], y[..., c:-c, c:-c]
    return x, y


def check_min_size(x: torch.Tensor, min_size: int, metric: str, why: str) -> None:
    """Raise :class:`InputError` when the spatial size of ``x`` is below ``min_size``."""
    if min(x.shape[-2:]) < min_size:
        raise InputError(
            f"{metric}: images of {x.shape[-2]}x{x.shape[-1]} pixels are too small; "
            f"need at least {min_size}x{min_size} ({why})"
        )


def gradient_magnitude(
    x: torch.Tensor, kernel_x: Sequence[Sequence[float]], scale: float, eps: float = 0.0
) -> torch.Tensor:
    """``sqrt(Ix^2 + Iy^2 + eps)`` of ``(B, C, H, W)`` per channel; shape is kept.

    ``Ix`` and ``Iy`` are the 3x3 ``kernel_x / scale`` and its transpose applied as MATLAB
    ``conv2(..., 'same')`` with zero padding (as a correlation: the kernels are antisymmetric, so
    only the sign differs, and it is squared away).
    """
    gx = torch.tensor(kernel_x, dtype=x.dtype, device=x.device) / scale
    kernels = torch.stack([gx, gx.t()]).unsqueeze(1)  # (2, 1, 3, 3)
    b, c, h, w = x.shape
    grads = F.conv2d(x.reshape(b * c, 1, h, w), kernels, padding=1)
    return (grads.square().sum(dim=1) + eps).sqrt().view(b, c, h, w)


def similarity(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """The similarity map ``(2 a b + t) / (a^2 + b^2 + t)`` of GMSD and FSIM (1 where ``a == b``)."""
    return (2 * a * b + t) / (a * a + b * b + t)
