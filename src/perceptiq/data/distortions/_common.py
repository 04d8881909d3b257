"""Shared plumbing of the distortion functions: input checks, dtype handling, padding and filters.

Every public distortion is wrapped by :func:`image_op`, which accepts ``(B, C, H, W)`` or ``(C, H, W)``
float tensors with values in [0, 1], computes in float32 (float64 stays float64), clips the result to
[0, 1] and returns it with the input's shape, dtype and device.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Concatenate, ParamSpec

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from perceptiq.errors import InputError
from perceptiq.functional._checks import as_batch
from perceptiq.functional._color import LUMA_BT601
from perceptiq.functional._filters import correlate1d_valid, pad_symmetric

__all__ = [
    "image_op",
    "require_generator",
    "check_level",
    "gaussian_kernel1d",
    "separable_filter",
    "filter2d",
    "luma",
    "to_pil_images",
    "from_pil_images",
]

P = ParamSpec("P")
FFT_MIN_TAPS = 121


def image_op(
    fn: Callable[Concatenate[torch.Tensor, P], torch.Tensor],
) -> Callable[Concatenate[torch.Tensor, P], torch.Tensor]:
    """Decorator: validate the image, compute in float32/float64, clip to [0, 1], restore shape and dtype."""

    @functools.wraps(fn)
    def wrapper(image: torch.Tensor, *args: P.args, **kwargs: P.kwargs) -> torch.Tensor:
        x = as_batch(image, fn.__name__, floating=True, unit_range=True)
        squeeze = image.ndim == 3
        work = x if x.dtype in (torch.float32, torch.float64) else x.float()
        out = fn(work, *args, **kwargs).clamp(0.0, 1.0).to(x.dtype)
        return out.squeeze(0) if squeeze else out

    return wrapper


def require_generator(generator: torch.Generator | None, name: str) -> torch.Generator:
    """Random distortions draw only from an explicit generator; refuse the global RNG."""
    if not isinstance(generator, torch.Generator):
        raise InputError(f"{name} is random: pass an explicit torch.Generator (got {generator!r})")
    return generator


def check_level(value: float, name: str, what: str, low: float, high: float = math.inf) -> float:
    """``value`` as a float in ``[low, high]``, or an :class:`InputError` naming the distortion and value."""
    try:
        level = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name}: {what} must be a number, got {value!r}") from None
    if not (low <= level <= high):
        raise InputError(f"{name}: {what} must lie in [{low}, {high}], got {value!r}")
    return level


def gaussian_kernel1d(sigma: float, truncate: float = 3.0) -> list[float]:
    """Normalised Gaussian taps ``exp(-t^2 / 2 sigma^2)``, radius ``int(truncate sigma + 0.5)`` (scipy's)."""
    radius = max(1, int(truncate * sigma + 0.5))
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-(t**2) / (2.0 * sigma**2))
    return (taps / taps.sum()).tolist()


def separable_filter(x: torch.Tensor, taps: list[float]) -> torch.Tensor:
    """Correlate rows then columns with odd-length ``taps``, padding by half-sample mirroring.

    The mirror is scipy's ``mode="reflect"`` (``c b a | a b c``), for any padding width.
    """
    r = len(taps) // 2
    x = pad_symmetric(x, r, r, r, r)
    return correlate1d_valid(correlate1d_valid(x, taps, x.ndim - 1), taps, x.ndim - 2)


def filter2d(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Correlate every channel with the odd-sized 2-D ``kernel`` (half-sample mirror padding, same size).

    Kernels of more than :data:`FFT_MIN_TAPS` taps are applied by FFT (the same linear correlation,
    computed as a product of spectra of the padded image and the flipped kernel), smaller ones by
    ``conv2d``.
    """
    kh, kw = kernel.shape
    b, c, h, w = x.shape
    padded = pad_symmetric(x, kh // 2, kh // 2, kw // 2, kw // 2)
    kernel = kernel.to(x.device, x.dtype)
    if kh * kw <= FFT_MIN_TAPS:
        out = F.conv2d(padded.reshape(b * c, 1, h + kh - 1, w + kw - 1), kernel[None, None])
        return out.reshape(b, c, h, w)
    size = padded.shape[-2:]
    spectrum = torch.fft.rfft2(padded) * torch.fft.rfft2(kernel.flip(0, 1), s=size)
    return torch.fft.irfft2(spectrum, s=size)[..., kh - 1 :, kw - 1 :]


def luma(x: torch.Tensor) -> torch.Tensor:
    """Full-range BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` as ``(B, 1, H, W)``; grey input is returned."""
    if x.shape[1] == 1:
        return x
    if x.shape[1] != 3:
        raise InputError(f"expected 1 or 3 channels, got {x.shape[1]}")
    return LUMA_BT601[0] * x[:, 0:1] + LUMA_BT601[1] * x[:, 1:2] + LUMA_BT601[2] * x[:, 2:3]


def to_pil_images(x: torch.Tensor, name: str) -> list[Image.Image]:
    """8-bit Pillow images (``L`` or ``RGB``) of a batch in [0, 1], ``255 x`` rounded to the nearest level."""
    if x.shape[1] not in (1, 3):
        raise InputError(f"{name}: Pillow codecs need 1 or 3 channels, got {x.shape[1]}")
    arrays = (x.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a) for a in arrays]


def from_pil_images(images: list[Image.Image], like: torch.Tensor) -> torch.Tensor:
    """Stack decoded 8-bit Pillow images back into a batch shaped, typed and placed like ``like``."""
    mode = "L" if like.shape[1] == 1 else "RGB"
    arrays = [np.asarray(im.convert(mode), np.float32).reshape(im.height, im.width, -1) for im in images]
    out = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2) / 255.0
    return out.to(like.device, like.dtype)
