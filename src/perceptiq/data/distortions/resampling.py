"""Resampling: down-then-up scaling (the degradation that super-resolution undoes) and pixelation.

All four kernels follow Pillow's ``Image.resize`` on float images, so a down-up here equals Pillow's
``img.resize(small, f).resize(full, f)`` on a mode ``"F"`` image up to float rounding:

- ``bilinear`` (triangle) and ``bicubic`` (Keys ``a = -0.5``): ``torch.nn.functional.interpolate`` with
  ``antialias=True`` in both directions (the kernel is widened by the scale when shrinking);
- ``nearest``: output ``i`` copies input ``floor((i + 0.5) in / out)``, computed in exact integer
  arithmetic (Pillow computes it in floating point and can pick the neighbour when the position is an
  exact integer); no prefiltering, the aliasing is part of the distortion;
- ``lanczos``: a Lanczos-3 kernel ``sinc(t) sinc(t / 3)`` for ``|t| < 3``, widened by the scale when
  shrinking, taps that fall outside the image dropped and the rest renormalised (Pillow's rule),
  applied as two dense resampling matrices (:func:`lanczos_matrix`).

Pixel centres are aligned (``align_corners=False``); values overshooting [0, 1] are clipped.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from perceptiq.data.distortions._common import check_level, image_op
from perceptiq.errors import InputError

__all__ = ["RESAMPLE_MODES", "lanczos_matrix", "lanczos_resize", "resample_down_up", "pixelate"]

ResampleMode = Literal["bicubic", "bilinear", "nearest", "lanczos"]
RESAMPLE_MODES: tuple[str, ...] = ("bicubic", "bilinear", "nearest", "lanczos")
_LANCZOS_A = 3


def lanczos_matrix(in_length: int, out_length: int, a: int = _LANCZOS_A) -> torch.Tensor:
    """Lanczos-``a`` resampling matrix ``(out_length, in_length)`` in float64; ``y = M @ x`` resizes a row.

    Output ``i`` is centred at input coordinate ``c = (i + 0.5) s``, ``s = in / out``; the kernel is
    scaled by ``f = max(s, 1)``; input ``j`` gets ``L((j + 0.5 - c) / f)`` for ``j`` in
    ``[floor(c - a f + 0.5), floor(c + a f + 0.5))`` clipped to the image, each row normalised to one.
    """
    if in_length < 1 or out_length < 1:
        raise InputError(f"lanczos resize lengths must be positive, got {in_length} -> {out_length}")
    scale = in_length / out_length
    widen = max(scale, 1.0)
    support = a * widen
    centre = (torch.arange(out_length, dtype=torch.float64) + 0.5) * scale
    j = torch.arange(in_length, dtype=torch.float64)
    t = (j[None, :] + 0.5 - centre[:, None]) / widen
    weights = torch.sinc(t) * torch.sinc(t / a) * (t.abs() < a)
    low = torch.floor(centre - support + 0.5).clamp_min(0)
    high = torch.floor(centre + support + 0.5).clamp_max(in_length)
    weights = weights * ((j[None, :] >= low[:, None]) & (j[None, :] < high[:, None]))
    return weights / weights.sum(dim=1, keepdim=True)


def lanczos_resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a batch ``(B, C, H, W)`` to ``size = (H', W')`` with Lanczos-3 (Pillow ``LANCZOS``); no clip."""
    h, w = image.shape[-2:]
    rows = lanczos_matrix(h, size[0]).to(image.device, image.dtype)
    cols = lanczos_matrix(w, size[1]).to(image.device, image.dtype)
    return torch.matmul(rows, torch.matmul(image, cols.T))


def _nearest_index(in_length: int, out_length: int, device: torch.device) -> torch.Tensor:
    i = torch.arange(out_length, device=device)
    return ((2 * i + 1) * in_length) // (2 * out_length)


def _resize(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    if mode == "lanczos":
        return lanczos_resize(x, size)
    if mode == "nearest":
        return x.index_select(-2, _nearest_index(x.shape[-2], size[0], x.device)).index_select(
            -1, _nearest_index(x.shape[-1], size[1], x.device)
        )
    return F.interpolate(x, size=size, mode=mode, antialias=True, align_corners=False)


@image_op
def resample_down_up(image: torch.Tensor, factor: float, mode: ResampleMode = "bicubic") -> torch.Tensor:
    """Downscale by ``factor`` and upscale back to the input size with the same kernel ``mode``.

    Level: ``factor`` >= 1 (the SR scale; 2, 3, 4, 8 in SR benchmarks), larger = stronger; the small
    image is ``max(1, round(H / factor)) x max(1, round(W / factor))``. ``factor = 1`` is the identity.
    ``mode`` is one of :data:`RESAMPLE_MODES` (see the module docstring).
    """
    factor = check_level(factor, "resample_down_up", "factor", 1.0)
    if mode not in RESAMPLE_MODES:
        raise InputError(f"resample_down_up: unknown mode {mode!r}; choose from {', '.join(RESAMPLE_MODES)}")
    if factor == 1:
        return image.clone()
    h, w = image.shape[-2:]
    small = _resize(image, (max(1, round(h / factor)), max(1, round(w / factor))), mode)
    return _resize(small, (h, w), mode)


@image_op
def pixelate(image: torch.Tensor, block: int) -> torch.Tensor:
    """Mosaic: replace each ``block x block`` tile by its mean.

    Level: integer ``block`` >= 1, larger = stronger; ``block = 1`` is the identity. Tiles start at
    the top-left corner; tiles cut by the right or bottom border average the pixels they contain.

    Example:
        >>> pixelate(torch.tensor([[[[0.0, 0.2, 0.4, 0.6, 1.0]]]]), 2).tolist()
        [[[[0.10000000149011612, 0.10000000149011612, 0.5, 0.5, 1.0]]]]
    """
    size = check_level(block, "pixelate", "block", 1)
    if size != int(size):
        raise InputError(f"pixelate: block must be an integer, got {block!r}")
    k = int(size)
    if k == 1:
        return image.clone()
    h, w = image.shape[-2:]
    pad = (0, (-w) % k, 0, (-h) % k)
    total = F.avg_pool2d(F.pad(image, pad), k, stride=k)
    count = F.avg_pool2d(F.pad(torch.ones_like(image[:1, :1]), pad), k, stride=k)
    means = total / count
    tiles = means.repeat_interleave(k, dim=-2).repeat_interleave(k, dim=-1)
    return tiles[..., :h, :w]
