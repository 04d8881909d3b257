"""Noise: additive white Gaussian, photon shot (Poisson) and chroma (colour) noise, clipped to [0, 1].

Noise is drawn on the generator's device in float32 (float64 for float64 images) and moved to the
image's device, so a seed gives the same noise on CPU and GPU. For the additive kinds the noise field
depends only on the generator's state and the image shape, not on the level: re-seeding and raising the
level scales the same field, which makes the error grow monotonically with the level.
"""

from __future__ import annotations

import torch

from perceptiq.data.distortions._common import check_level, image_op, require_generator
from perceptiq.errors import InputError

__all__ = ["gaussian_noise", "poisson_noise", "color_noise"]

# full-range BT.601 (JFIF) YCbCr -> RGB: the RGB change caused by a unit change of Cb and of Cr
_CB_TO_RGB = (0.0, -0.344136, 1.772)
_CR_TO_RGB = (1.402, -0.714136, 0.0)


def _standard_normal(shape: torch.Size, like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    noise = torch.randn(shape, generator=generator, dtype=like.dtype, device=generator.device)
    return noise.to(like.device)


@image_op
def gaussian_noise(image: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """Add i.i.d. ``N(0, sigma^2)`` noise to every sample.

    Level: ``sigma`` >= 0 in [0, 1] units, larger = stronger.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> gaussian_noise(torch.full((1, 3, 8, 8), 0.5), 0.05, g).shape
        torch.Size([1, 3, 8, 8])
    """
    sigma = check_level(sigma, "gaussian_noise", "sigma", 0.0)
    gen = require_generator(generator, "gaussian_noise")
    return image + sigma * _standard_normal(image.shape, image, gen)


@image_op
def poisson_noise(image: torch.Tensor, peak: float, generator: torch.Generator) -> torch.Tensor:
    """Photon shot noise: ``Poisson(peak * x) / peak`` per sample (level: ``peak`` > 0, smaller = stronger).

    ``peak`` is the expected photon count of a white sample; the output has mean ``x`` and variance
    ``x / peak`` (before clipping), so the noise is signal dependent and vanishes on black.
    """
    peak = check_level(peak, "poisson_noise", "peak", 1e-6)
    gen = require_generator(generator, "poisson_noise")
    rate = (image * peak).to(gen.device)
    return torch.poisson(rate, generator=gen).to(image.device) / peak


@image_op
def color_noise(image: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """White Gaussian noise of standard deviation ``sigma`` on the chroma channels Cb and Cr only.

    Level: ``sigma`` >= 0 in [0, 1] units of full-range BT.601 (JFIF) YCbCr, larger = stronger. Luma
    is untouched before clipping (KADID-10k's "white noise in colour component"). RGB input only.
    """
    sigma = check_level(sigma, "color_noise", "sigma", 0.0)
    gen = require_generator(generator, "color_noise")
    if image.shape[1] != 3:
        raise InputError(f"color_noise needs RGB images (3 channels), got {image.shape[1]}")
    b, _, h, w = image.shape
    noise = sigma * _standard_normal(torch.Size((b, 2, h, w)), image, gen)
    cb, cr = noise[:, 0:1], noise[:, 1:2]
    delta = torch.cat([cb * _CB_TO_RGB[k] + cr * _CR_TO_RGB[k] for k in range(3)], dim=1)
    return image + delta


@image_op
def luminance_noise(image: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """White Gaussian noise of standard deviation ``sigma`` on the luma channel only: one noise field
    added to R, G and B alike, so BT.601 (JFIF) Cb and Cr are untouched before clipping (grey grain,
    as a camera's luminance noise; ``gaussian_noise`` draws each channel independently, i.e. colour
    noise). Level: ``sigma`` >= 0 in [0, 1] units, larger = stronger. RGB or grey input.
    """
    sigma = check_level(sigma, "luminance_noise", "sigma", 0.0)
    gen = require_generator(generator, "luminance_noise")
    b, _, h, w = image.shape
    return image + sigma * _standard_normal(torch.Size((b, 1, h, w)), image, gen)
