"""A parameter-free descriptor of natural-scene and capture statistics for blind quality models.

The descriptor gathers well-studied no-reference cues in one (B, D) vector per image; nothing in it
is learned. Groups (in order):

1. ``brisque_grey``: the 36 BRISQUE features (Mittal et al., IEEE TIP 2012: GGD of MSCN coefficients
   and AGGD of their neighbour products) of the grey image at scales 1 and 1/2, and again at 1/4 and
   1/8 (72 values).
2. ``brisque_colour``: the first-scale 18 BRISQUE features of the two opponent colour channels
   O1 = (R - G)/sqrt 2 and O2 = (R + G - 2B)/sqrt 6 (36 values; chroma NSS as in FRIQUEE, Ghadiyaram &
   Bovik 2017).
3. ``exposure``: luminance percentiles (1, 5, 50, 95, 99 %), mean, standard deviation and clipped
   fractions, Hasler-Suesstrunk colourfulness, saturation mean and spread (12 values).
4. ``sharpness``: log Laplacian variance and gradient-magnitude mean/median/90th/99th percentile at
   scales 1 and 1/2, percentiles of the local standard deviation map, and the slope and
   high-frequency share of the radially averaged power spectrum (Field 1987) (20 values).
5. ``noise_blocking``: Immerkaer's fast noise estimate at scales 1 and 1/2 and the 8x8 JPEG
   blockiness ratio (3 values).
6. ``log_gabor_bands`` and 7. ``log_gabor_scales``: per-subband GGD statistics of a 4-level x 6-orientation
   log-Gabor bank and cross-orientation / cross-scale energy statistics (87 values; DIIVINE, FRIQUEE;
   :mod:`perceptiq.functional.nr.log_gabor`). Added in descriptor version 2: +0.02-0.03 of 5-fold CV SRCC
   on CLIVE; patch heterogeneity, FRIQUEE colour NSS, sigma-map NSS, log-derivative and block-entropy
   groups were measured too and did not help.

Input: RGB images (B, 3, H, W) in [0, 1], at least 64 x 64 pixels (the 1/8 scale needs 8 x 8).
Output: float64 (B, :data:`FEATURE_DIM`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from perceptiq.errors import InputError
from perceptiq.functional.nr.brisque import brisque_features
from perceptiq.functional.nr.log_gabor import LOG_GABOR_GROUPS, log_gabor_features
from perceptiq.functional.nr.nss import box_half, to_grey255

__all__ = ["DESCRIPTOR_VERSION", "FEATURE_DIM", "FEATURE_GROUPS", "MIN_SIZE", "quality_features"]

DESCRIPTOR_VERSION = 2  # bump whenever the values change (cached descriptors are keyed by it)

FEATURE_GROUPS = {
    "brisque_grey": 72,
    "brisque_colour": 36,
    "exposure": 12,
    "sharpness": 20,
    "noise_blocking": 3,
    **LOG_GABOR_GROUPS,
}
FEATURE_DIM = sum(FEATURE_GROUPS.values())
MIN_SIZE = 64


def _laplacian_log_var(g: torch.Tensor) -> torch.Tensor:
    kernel = torch.tensor(
        [[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=g.dtype, device=g.device
    )
    response = F.conv2d(g.unsqueeze(1), kernel.view(1, 1, 3, 3))
    return torch.log1p(response.var(dim=(1, 2, 3)))


def _gradient_stats(g: torch.Tensor) -> torch.Tensor:
    gx = g[:, :-1, 1:] - g[:, :-1, :-1]
    gy = g[:, 1:, :-1] - g[:, :-1, :-1]
    magnitude = torch.sqrt(gx * gx + gy * gy).flatten(1) / 255.0
    q = torch.quantile(magnitude, torch.tensor([0.5, 0.9, 0.99], dtype=g.dtype, device=g.device), dim=1).T
    return torch.cat([magnitude.mean(1, keepdim=True), q], dim=1)


def _local_std_percentiles(g: torch.Tensor) -> torch.Tensor:
    x = g.unsqueeze(1) / 255.0
    mean = F.avg_pool2d(x, 7, stride=1)
    var = (F.avg_pool2d(x * x, 7, stride=1) - mean * mean).clamp_min(0)
    std = var.sqrt().flatten(1)
    return torch.quantile(std, torch.tensor([0.1, 0.5, 0.9], dtype=g.dtype, device=g.device), dim=1).T


def _spectrum(g: torch.Tensor) -> torch.Tensor:
    """Slope of log power vs log radial frequency, and the share of power above half Nyquist."""
    h, w = g.shape[-2:]
    window = torch.outer(
        torch.hann_window(h, dtype=g.dtype, device=g.device),
        torch.hann_window(w, dtype=g.dtype, device=g.device),
    )
    power = torch.fft.rfft2((g - g.mean(dim=(1, 2), keepdim=True)) * window).abs() ** 2
    fy = torch.fft.fftfreq(h, device=g.device, dtype=g.dtype).abs().view(-1, 1)
    fx = torch.fft.rfftfreq(w, device=g.device, dtype=g.dtype).view(1, -1)
    radius = torch.sqrt(fx * fx + fy * fy)
    bins = torch.clamp((radius / 0.5 * 32).long(), max=32)
    flat_bins = bins.flatten()
    sums = torch.zeros(g.shape[0], 33, dtype=g.dtype, device=g.device).index_add_(
        1, flat_bins, power.flatten(1)
    )
    counts = torch.bincount(flat_bins, minlength=33).to(g.dtype)
    radial = sums[:, 1:32] / counts[1:32].clamp_min(1)
    log_f = torch.log(torch.arange(1, 32, dtype=g.dtype, device=g.device))
    log_p = torch.log(radial + 1e-12)
    lf = log_f - log_f.mean()
    slope = ((log_p - log_p.mean(1, keepdim=True)) * lf).sum(1) / (lf * lf).sum()
    high = sums[:, 16:].sum(1) / sums[:, 1:].sum(1).clamp_min(1e-12)
    return torch.stack([slope, high], dim=1)


def _noise_sigma(g: torch.Tensor) -> torch.Tensor:
    """Immerkaer (1996): sigma = sqrt(pi/2) / (6 (W-2)(H-2)) * sum |I * N|, N the 3x3 Laplacian difference."""
    kernel = torch.tensor(
        [[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]], dtype=g.dtype, device=g.device
    )
    response = F.conv2d(g.unsqueeze(1), kernel.view(1, 1, 3, 3)).abs()
    return response.mean(dim=(1, 2, 3)) * math.sqrt(math.pi / 2) / 6 / 255.0


def _blockiness(g: torch.Tensor) -> torch.Tensor:
    """Mean horizontal difference across 8x8 block borders over the mean difference inside blocks."""
    diff = (g[:, :, 1:] - g[:, :, :-1]).abs()
    columns = torch.arange(diff.shape[-1], device=g.device)
    border = (columns % 8) == 7
    return diff[:, :, border].mean(dim=(1, 2)) / (diff[:, :, ~border].mean(dim=(1, 2)) + 1e-6)


def _exposure(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    lum = g.flatten(1) / 255.0
    q = torch.quantile(
        lum, torch.tensor([0.01, 0.05, 0.5, 0.95, 0.99], dtype=g.dtype, device=g.device), dim=1
    ).T
    r, gr, b = (x[:, i].to(g.dtype) for i in range(3))
    rg, yb = (r - gr).flatten(1), (0.5 * (r + gr) - b).flatten(1)
    colourfulness = torch.sqrt(rg.std(1) ** 2 + yb.std(1) ** 2) + 0.3 * torch.sqrt(
        rg.mean(1) ** 2 + yb.mean(1) ** 2
    )
    top, bottom = x.to(g.dtype).amax(1), x.to(g.dtype).amin(1)
    saturation = ((top - bottom) / (top + 1e-6)).flatten(1)
    stats = [lum.mean(1), lum.std(1), (lum > 0.98).to(g.dtype).mean(1), (lum < 0.02).to(g.dtype).mean(1)]
    return torch.cat(
        [q, torch.stack([*stats, colourfulness, saturation.mean(1), saturation.std(1)], dim=1)], dim=1
    )


def quality_features(images: torch.Tensor) -> torch.Tensor:
    """The descriptor of the module docstring: (B, 3, H, W) RGB in [0, 1] -> float64 (B, FEATURE_DIM).

    Raises:
        InputError: not an RGB batch, or smaller than :data:`MIN_SIZE` on a side.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise InputError(f"quality features need RGB images (B, 3, H, W), got {tuple(images.shape)}")
    if min(images.shape[-2:]) < MIN_SIZE:
        raise InputError(
            f"quality features need images of at least {MIN_SIZE}x{MIN_SIZE}, got {tuple(images.shape[-2:])}"
        )
    x = images.clamp(0, 1)
    g = to_grey255(x)
    g2 = box_half(g)
    g4 = box_half(g2)
    scaled = x.to(torch.float64) * 255.0
    o1 = (scaled[:, 0] - scaled[:, 1]) / math.sqrt(2) + 128.0
    o2 = (scaled[:, 0] + scaled[:, 1] - 2 * scaled[:, 2]) / math.sqrt(6) + 128.0
    parts = [
        brisque_features(g),
        brisque_features(g4),
        brisque_features(o1)[:, :18],
        brisque_features(o2)[:, :18],
        _exposure(x, g),
        torch.stack([_laplacian_log_var(g), _laplacian_log_var(g2)], dim=1),
        _gradient_stats(g),
        _gradient_stats(g2),
        _local_std_percentiles(g),
        _local_std_percentiles(g2),
        _spectrum(g),
        _spectrum(g2),
        torch.stack([_noise_sigma(g), _noise_sigma(g2), _blockiness(g)], dim=1),
        log_gabor_features(x),
    ]
    features = torch.cat([p.to(torch.float64) for p in parts], dim=1)
    return torch.nan_to_num(features, nan=0.0, posinf=0.0, neginf=0.0)
