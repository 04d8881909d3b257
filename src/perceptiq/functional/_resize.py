"""MATLAB-compatible ``imresize`` (bicubic, antialiased) as a pure torch function.

The classical no-reference metrics (NIQE, BRISQUE) were published with MATLAB code that halves the
image with ``imresize(im, 0.5)``; reproducing their values needs the same resampler. The rules
below are those of MATLAB's ``imresize`` documentation and of Keys (1981):

- kernel: Keys cubic convolution with ``a = -0.5``, support ``[-2, 2]``;
- when shrinking (scale < 1) with antialiasing, the kernel is stretched to ``scale * k(scale * x)``
  and its support widens to ``4 / scale`` input pixels;
- output pixel ``x`` (1-based) maps to input coordinate ``u = x / scale + 0.5 * (1 - 1 / scale)``;
- each row of weights is normalised to sum to one;
- out-of-range taps read the image mirrored with the border pixel repeated (``symmetric``);
- the output length is ``ceil(scale * length)``; the dimension with the smaller scale is resized
  first (rows first on a tie).

No rounding or clipping is applied: MATLAB does that only for integer inputs.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from perceptiq.errors import InputError

__all__ = ["cubic_kernel", "resize_weights", "BandedMap", "resize_map", "imresize"]


def cubic_kernel(x: torch.Tensor) -> torch.Tensor:
    """Keys cubic convolution kernel with ``a = -0.5`` (Keys 1981, eq. 15), zero outside ``|x| <= 2``."""
    ax = x.abs()
    ax2 = ax * ax
    ax3 = ax2 * ax
    inner = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    outer = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return inner + outer


def resize_weights(
    in_length: int, out_length: int, scale: float, *, antialias: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Taps of a 1-D MATLAB bicubic resize: ``(indices, weights)``, each of shape ``(out_length, taps)``.

    ``indices`` are 0-based positions in the input (already mirrored into ``[0, in_length)``);
    output ``i`` is ``sum_k weights[i, k] * input[indices[i, k]]`` (float64, on the CPU). Columns
    whose weights are zero for every output are dropped, as MATLAB does.
    """
    if in_length < 1 or out_length < 1:
        raise InputError(f"resize lengths must be positive, got {in_length} -> {out_length}")
    if not scale > 0:
        raise InputError(f"resize scale must be positive, got {scale}")
    width = 4.0
    shrink = scale < 1 and antialias
    if shrink:
        width = width / scale
    x = torch.arange(1, out_length + 1, dtype=torch.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = torch.floor(u - width / 2.0)
    taps = math.ceil(width) + 2
    idx = left[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]
    dist = u[:, None] - idx
    weights = scale * cubic_kernel(scale * dist) if shrink else cubic_kernel(dist)
    weights = weights / weights.sum(dim=1, keepdim=True)
    mirror = torch.cat([torch.arange(in_length), torch.arange(in_length - 1, -1, -1)])
    idx = mirror[torch.remainder(idx.long() - 1, 2 * in_length)]
    keep = (weights != 0).any(dim=0)
    return idx[:, keep], weights[:, keep]


class BandedMap:
    """A 1-D linear map ``out[i] = sum_k weight[i, k] * x[index[i, k]]`` stored as dense blocks.

    The map is banded (each output reads a few neighbouring inputs), so it is applied as small
    matrix products, one per block of ``block`` outputs over the input span that block reads;
    runs of identical blocks at a constant input step (the interior of a convolution or of a
    resize by 1/k) are applied as one batched product over a strided view. This is much faster
    than gathering on CPU, and the same code runs on any device. Repeated indices (mirrored or
    clamped borders) have their weights added.
    """

    def __init__(self, index: torch.Tensor, weight: torch.Tensor, block: int = 16) -> None:
        index = index.cpu().long()
        weight = weight.cpu().to(torch.float64)
        self.out_length = index.shape[0]
        blocks: list[tuple[int, torch.Tensor]] = []
        for start in range(0, self.out_length, block):
            idx = index[start : start + block]
            lo, hi = int(idx.min()), int(idx.max()) + 1
            mat = torch.zeros(idx.shape[0], hi - lo, dtype=torch.float64)
            mat.scatter_add_(1, idx - lo, weight[start : start + block])
            blocks.append((lo, mat))
        self.groups: list[tuple[int, int, int]] = []
        self._mats: list[torch.Tensor] = []
        for lo, mat in blocks:
            if self.groups:
                first, step, count = self.groups[-1]
                prev = self._mats[-1]
                same = prev.shape == mat.shape and torch.equal(prev, mat)
                if same and (count == 1 or lo - first == step * count):
                    self.groups[-1] = (first, lo - first if count == 1 else step, count + 1)
                    continue
            self.groups.append((lo, 0, 1))
            self._mats.append(mat)
        self._on: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}

    def matrices(self, device: torch.device, dtype: torch.dtype) -> list[torch.Tensor]:
        """The block matrices of each group on ``device`` in ``dtype`` (copied once per device and dtype)."""
        key = (torch.device(device), dtype)
        if key not in self._on:
            self._on[key] = [m.to(device=device, dtype=dtype) for m in self._mats]
        return self._on[key]

    def apply(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        """Apply the map along ``dim`` (-1 or -2) of ``x``."""
        if dim not in (-1, -2):
            raise InputError(f"a banded map applies along dimension -1 or -2, got {dim}")
        parts = []
        for (lo, step, count), mat in zip(self.groups, self.matrices(x.device, x.dtype), strict=True):
            width = mat.shape[1]
            stop = lo + step * (count - 1) + width
            if dim == -1:
                windows = x[..., lo:stop].unfold(-1, width, step) if count > 1 else x[..., None, lo:stop]
                out = torch.mm(windows.reshape(-1, width), mat.T)
                parts.append(out.reshape(*windows.shape[:-2], -1))
            else:
                segment = x[..., lo:stop, :]
                windows = (
                    segment.unfold(-2, width, step).transpose(-1, -2)
                    if count > 1
                    else segment[..., None, :, :]
                )
                parts.append(torch.matmul(mat, windows).flatten(-3, -2))
        return torch.cat(parts, dim=dim) if len(parts) > 1 else parts[0]


@lru_cache(maxsize=64)
def resize_map(in_length: int, out_length: int, scale: float, antialias: bool = True) -> BandedMap:
    """The :class:`BandedMap` of a 1-D MATLAB bicubic resize (see :func:`resize_weights`), cached."""
    return BandedMap(*resize_weights(in_length, out_length, scale, antialias=antialias))


def imresize(
    x: torch.Tensor,
    scale: float | tuple[float, float] | None = None,
    *,
    size: tuple[int, int] | None = None,
    antialias: bool = True,
) -> torch.Tensor:
    """Resize the last two dimensions of ``x`` like MATLAB ``imresize(x, scale, 'bicubic')``.

    Args:
        x: float tensor ``(..., H, W)`` on any device; values are not clipped or rounded.
        scale: one factor for both dimensions or ``(scale_h, scale_w)``; the output is
            ``ceil(scale * H) x ceil(scale * W)``.
        size: output ``(height, width)`` instead of ``scale``; the scales become ``size / input``.
        antialias: widen the kernel when shrinking (MATLAB's default ``'Antialiasing', true``).

    Returns:
        The resized tensor, same dtype and device as ``x``.

    Example:
        >>> imresize(torch.ones(1, 4, 6, dtype=torch.float64), 0.5).shape
        torch.Size([1, 2, 3])
    """
    if not isinstance(x, torch.Tensor) or x.ndim < 2 or not x.is_floating_point():
        raise InputError("imresize needs a float tensor with at least 2 dimensions (..., H, W)")
    height, width = x.shape[-2], x.shape[-1]
    if (scale is None) == (size is None):
        raise InputError("imresize: give exactly one of scale and size")
    if size is not None:
        out_h, out_w = int(size[0]), int(size[1])
        if out_h < 1 or out_w < 1:
            raise InputError(f"imresize: output size must be positive, got {size}")
        scales = (out_h / height, out_w / width)
    else:
        scales = (float(scale), float(scale)) if isinstance(scale, int | float) else tuple(map(float, scale))
        if len(scales) != 2 or min(scales) <= 0:
            raise InputError(f"imresize: scale must be positive (one value or two), got {scale}")
        out_h, out_w = math.ceil(scales[0] * height), math.ceil(scales[1] * width)
    order = (-2, -1) if scales[0] <= scales[1] else (-1, -2)
    lengths = {-2: out_h, -1: out_w}
    factors = {-2: scales[0], -1: scales[1]}
    for dim in order:
        x = resize_map(x.shape[dim], lengths[dim], factors[dim], antialias).apply(x, dim)
    return x
