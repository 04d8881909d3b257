"""Blur: Gaussian (optical / focus softness), linear motion (camera shake) and defocus (out-of-focus disk).

All borders are mirrored half-sample (scipy ``mode="reflect"``). Larger levels blur more.
"""

from __future__ import annotations

import math

import torch

from perceptiq.data.distortions._common import (
    check_level,
    filter2d,
    gaussian_kernel1d,
    image_op,
    require_generator,
    separable_filter,
)

__all__ = ["gaussian_blur", "motion_blur", "defocus_blur", "motion_kernel", "disk_kernel"]


@image_op
def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of standard deviation ``sigma`` pixels.

    Level: ``sigma`` >= 0, larger = stronger.

    Taps ``exp(-t^2 / 2 sigma^2)`` out to ``int(3 sigma + 0.5)`` pixels, normalised: the filter of
    ``scipy.ndimage.gaussian_filter(x, sigma, mode="reflect", truncate=3)``. ``sigma = 0`` is the identity.

    Example:
        >>> x = torch.zeros(1, 1, 9, 9); x[..., 4, 4] = 1.0
        >>> round(gaussian_blur(x, 1.0).sum().item(), 5)  # the mass is preserved
        1.0
    """
    sigma = check_level(sigma, "gaussian_blur", "sigma", 0.0)
    if sigma == 0:
        return image.clone()
    return separable_filter(image, gaussian_kernel1d(sigma))


def motion_kernel(length: float, angle: float) -> torch.Tensor:
    """Linear motion kernel (float64, odd square, sums to one): a line of ``length`` px at ``angle`` degrees.

    The weight of pixel ``p`` is ``max(0, 1 - d(p))``, ``d`` being its distance to the segment of
    length ``length - 1`` centred on the kernel (so at angle 0 the kernel is a box of ``length`` pixels
    for odd integer lengths, and ``length = 1`` is the identity). Angles run counter-clockwise from the
    +x axis as seen on screen (rows grow downwards).
    """
    half = (length - 1.0) / 2.0
    radius = math.ceil(half) + 1
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    v, u = torch.meshgrid(t, t, indexing="ij")  # v: row offset (down), u: column offset (right)
    dx, dy = math.cos(math.radians(angle)), -math.sin(math.radians(angle))
    along = (u * dx + v * dy).clamp(-half, half)
    dist = torch.hypot(u - along * dx, v - along * dy)
    kernel = (1.0 - dist).clamp_min(0.0)
    return kernel / kernel.sum()


@image_op
def motion_blur(
    image: torch.Tensor,
    length: float,
    angle: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Linear motion blur along a line of ``length`` pixels (level: ``length`` >= 1, larger = stronger).

    ``angle`` in degrees (see :func:`motion_kernel`); ``None`` draws it uniformly from [0, 180) with
    ``generator``, which is then required.
    """
    length = check_level(length, "motion_blur", "length", 1.0)
    if angle is None:
        gen = require_generator(generator, "motion_blur with a random angle")
        angle = 180.0 * torch.rand((), generator=gen, dtype=torch.float64).item()
    if length == 1:
        return image.clone()
    return filter2d(image, motion_kernel(length, float(angle)))


def disk_kernel(radius: float) -> torch.Tensor:
    """Defocus (pillbox) kernel of ``radius`` pixels (float64, odd square, sums to one).

    The weight of the pixel at distance ``d`` from the centre is ``clip(radius + 0.5 - d, 0, 1)``, a
    linear approximation of the fraction of the pixel covered by the disk; ``radius = 0`` is the identity.
    """
    size = math.ceil(radius + 0.5)
    t = torch.arange(-size, size + 1, dtype=torch.float64)
    v, u = torch.meshgrid(t, t, indexing="ij")
    kernel = (radius + 0.5 - torch.hypot(u, v)).clamp(0.0, 1.0)
    return kernel / kernel.sum()


@image_op
def defocus_blur(image: torch.Tensor, radius: float) -> torch.Tensor:
    """Out-of-focus blur by a uniform disk of ``radius`` pixels.

    Level: ``radius`` >= 0, larger = stronger; ``radius = 0`` is the identity.
    """
    radius = check_level(radius, "defocus_blur", "radius", 0.0)
    if radius == 0:
        return image.clone()
    return filter2d(image, disk_kernel(radius))
