"""Artefacts typical of super-resolution outputs: over-sharpening halos, ringing, hallucinated texture.

- Over-sharpening: unsharp masking ``x + amount (x - G_s x)`` (Gaussian ``G_s``, ``s = 1.5`` px): edges
  gain light and dark halos about ``2 s`` wide, as from perceptually tuned or GAN-based SR models.
- Ringing: an ideal (brick-wall) radial low-pass filter in the frequency domain. Cutting the spectrum
  sharply leaves Gibbs oscillations parallel to edges, as from sinc-like upsamplers and networks trained
  with pixel losses; lower cutoffs blur more and ring at longer wavelengths. The image is extended by
  half-sample mirroring to twice its size first, so the image borders (the seams of the periodic FFT
  extension) do not ring.
- Hallucinated texture: band-pass filtered Gaussian noise (difference of Gaussians, ``s = 0.8`` and
  ``2.0`` px, normalised to unit RMS over the image), one field shared by all channels (a luminance
  texture), added with a weight that grows with the local luma contrast,
  ``clip((std_3(Y) - 0.002) / (0.05 - 0.002), 0, 1)``, ``std_3`` the Gaussian-weighted (``s = 3`` px)
  local standard deviation (below 0.002, half an 8-bit level, an area counts as flat). Flat areas stay
  clean and textured areas get fine false detail, as GAN and diffusion SR models invent.
"""

from __future__ import annotations

import torch

from perceptiq.data.distortions._common import (
    check_level,
    gaussian_kernel1d,
    image_op,
    luma,
    require_generator,
    separable_filter,
)

__all__ = ["oversharpen", "ringing", "hallucinated_texture", "texture_mask"]

SHARPEN_SIGMA = 1.5
TEXTURE_BAND = (0.8, 2.0)
TEXTURE_WINDOW_SIGMA = 3.0
TEXTURE_STD_RANGE = (0.002, 0.05)


@image_op
def oversharpen(image: torch.Tensor, amount: float, sigma: float = SHARPEN_SIGMA) -> torch.Tensor:
    """Unsharp masking ``x + amount (x - G_sigma x)``; level: ``amount`` >= 0, larger = stronger halos.

    ``G_sigma`` is :func:`~perceptiq.data.distortions.blur.gaussian_blur`'s filter; ``amount = 0`` is
    the identity.
    """
    amount = check_level(amount, "oversharpen", "amount", 0.0)
    sigma = check_level(sigma, "oversharpen", "sigma", 1e-3)
    return image + amount * (image - separable_filter(image, gaussian_kernel1d(sigma)))


@image_op
def ringing(image: torch.Tensor, cutoff: float) -> torch.Tensor:
    """Ideal radial low-pass keeping frequencies up to ``cutoff`` times Nyquist.

    Level: ``cutoff`` > 0, smaller = stronger. Frequencies ``(f_y, f_x)`` in cycles per pixel are
    kept when ``sqrt(f_y^2 + f_x^2) <= 0.5 cutoff`` (``cutoff >= sqrt(2)`` keeps everything). See the
    module docstring for the mirrored extension.

    Example:
        >>> import math
        >>> n = torch.arange(16.0)
        >>> low, high = torch.cos(math.pi * 2 * (n + 0.5) / 16), torch.cos(math.pi * 12 * (n + 0.5) / 16)
        >>> x = (0.5 + 0.2 * low + 0.2 * high).expand(1, 1, 4, 16)
        >>> torch.allclose(ringing(x, 0.5), (0.5 + 0.2 * low).expand(1, 1, 4, 16), atol=1e-6)
        True
    """
    cutoff = check_level(cutoff, "ringing", "cutoff", 1e-6)
    h, w = image.shape[-2:]
    wide = torch.cat([image, image.flip(-1)], dim=-1)
    tall = torch.cat([wide, wide.flip(-2)], dim=-2)  # (B, C, 2H, 2W), periodic and continuous
    fy = torch.fft.fftfreq(2 * h, device=image.device, dtype=image.dtype)
    fx = torch.fft.rfftfreq(2 * w, device=image.device, dtype=image.dtype)
    keep = (fy[:, None] ** 2 + fx[None, :] ** 2) <= (0.5 * cutoff) ** 2
    spectrum = torch.fft.rfft2(tall) * keep
    return torch.fft.irfft2(spectrum, s=(2 * h, 2 * w))[..., :h, :w]


def texture_mask(image: torch.Tensor) -> torch.Tensor:
    """Weight in [0, 1] of hallucinated texture (see the module docstring), shape ``(B, 1, H, W)``."""
    y = luma(image)
    taps = gaussian_kernel1d(TEXTURE_WINDOW_SIGMA)
    mean = separable_filter(y, taps)
    var = (separable_filter(y * y, taps) - mean * mean).clamp_min(0.0)
    low, high = TEXTURE_STD_RANGE
    return ((var.sqrt() - low) / (high - low)).clamp(0.0, 1.0)


@image_op
def hallucinated_texture(image: torch.Tensor, amplitude: float, generator: torch.Generator) -> torch.Tensor:
    """Add band-pass noise of RMS ``amplitude`` in textured regions.

    Level: ``amplitude`` >= 0, larger = stronger; ``amplitude`` is in [0, 1] units where the texture
    mask is one (see the module docstring).
    """
    amplitude = check_level(amplitude, "hallucinated_texture", "amplitude", 0.0)
    gen = require_generator(generator, "hallucinated_texture")
    b, _, h, w = image.shape
    noise = torch.randn((b, 1, h, w), generator=gen, dtype=image.dtype, device=gen.device).to(image.device)
    fine, coarse = (separable_filter(noise, gaussian_kernel1d(s)) for s in TEXTURE_BAND)
    band = fine - coarse
    band = band / band.square().mean(dim=(1, 2, 3), keepdim=True).sqrt().clamp_min(1e-12)
    return image + amplitude * texture_mask(image) * band
