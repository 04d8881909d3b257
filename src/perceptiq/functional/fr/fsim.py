"""Feature similarity (FSIM / FSIMc), Zhang, Zhang, Mou & Zhang, IEEE TIP 20(8), 2011, eqs. 1-17.

Steps of the authors' MATLAB ``FeatureSIM.m`` (reproduced here):

1. Luminance and chroma by the script's YIQ (``0.299 R + 0.587 G + 0.114 B``, no rounding; grey
   images are their own luminance with flat chroma), on the 0-255 scale.
2. Downsampling by ``F = max(1, round(min(H, W) / 256))``: ``conv2`` with an ``F x F`` box
   (zero padding, ``'same'``), then every ``F``-th pixel.
3. Phase congruency ``PC`` of each luminance by the script's ``phasecong2``: log-Gabor filters built
   in the frequency domain (4 scales from wavelength 6, ratio 2, ``sigmaOnf = 0.55``; 4
   orientations with angular sigma ``pi / 4 / 1.2``; low-pass radius 0.45, order 15), energy
   ``sum_s (E MeanE + O MeanO - |E MeanO - O MeanE|)`` per orientation minus a noise threshold
   from the median squared response at the finest scale (``k = 2``, divided by 1.7), summed over
   orientations and divided by the summed amplitudes.
4. Gradient magnitude ``G`` with the Scharr-like ``[3 0 -3; 10 0 -10; 3 0 -3] / 16`` and its
   transpose (``conv2 'same'``).
5. ``S_PC = (2 PC1 PC2 + 0.85) / (PC1^2 + PC2^2 + 0.85)``, ``S_G = (2 G1 G2 + 160) / (G1^2 + G2^2 + 160)``,
   ``FSIM = sum(S_PC S_G PCm) / sum(PCm)`` with ``PCm = max(PC1, PC2)``; FSIMc multiplies by
   ``Re((S_I S_Q)^0.03)`` with ``S_I``, ``S_Q`` the I and Q similarities (constant 200).

Range [0, 1]; higher is better. Matches the ``fsim`` row of the TID2013 calibration values (FSIMc
on RGB) and piq's MATLAB FSIM/FSIMc values. The MATLAB ``median`` of an even number of values is
the mean of the two middle ones, as here.
"""

from __future__ import annotations

import math

import torch

from perceptiq.errors import InputError
from perceptiq.functional._color import YIQ_MATRIX
from perceptiq.functional._filters import box_downsample, matlab_round
from perceptiq.functional.fr._common import check_min_size, gradient_magnitude, prepare_pair, similarity

__all__ = ["fsim", "phase_congruency"]

_N_SCALE = 4
_N_ORIENT = 4
_MIN_WAVELENGTH = 6.0
_MULT = 2.0
_SIGMA_ON_F = 0.55
_D_THETA_ON_SIGMA = 1.2
_K_NOISE = 2.0
_EPS_PC = 1e-4
_T_PC, _T_G, _T_CHROMA, _LAMBDA = 0.85, 160.0, 200.0, 0.03
_SCHARR_X = ((3.0, 0.0, -3.0), (10.0, 0.0, -10.0), (3.0, 0.0, -3.0))


def _normalised_range(n: int, device: torch.device) -> torch.Tensor:
    """``phasecong2``'s frequency coordinates along one axis, ranging over about [-0.5, 0.5]."""
    if n % 2:
        return torch.arange(-(n - 1) / 2, (n - 1) / 2 + 1, device=device, dtype=torch.float64) / (n - 1)
    return torch.arange(-n / 2, n / 2, device=device, dtype=torch.float64) / n


def _log_gabor_bank(rows: int, cols: int, device: torch.device) -> torch.Tensor:
    """Log-Gabor filters ``(orient, scale, rows, cols)`` of ``phasecong2``; zero frequency at [0, 0]."""
    y = _normalised_range(rows, device).view(-1, 1)
    x = _normalised_range(cols, device).view(1, -1)
    radius = torch.fft.ifftshift(torch.sqrt(x * x + y * y))
    theta = torch.fft.ifftshift(torch.atan2(-y.expand(rows, cols), x.expand(rows, cols)))
    low_pass = 1.0 / (1.0 + (radius / 0.45) ** (2 * 15))
    radius = radius.clone()
    radius[0, 0] = 1.0
    radial = []
    for s in range(_N_SCALE):
        f0 = 1.0 / (_MIN_WAVELENGTH * _MULT**s)
        g = torch.exp(-(torch.log(radius / f0) ** 2) / (2 * math.log(_SIGMA_ON_F) ** 2)) * low_pass
        g[0, 0] = 0.0
        radial.append(g)
    theta_sigma = math.pi / _N_ORIENT / _D_THETA_ON_SIGMA
    sin_t, cos_t = torch.sin(theta), torch.cos(theta)
    bank = []
    for o in range(_N_ORIENT):
        angle = o * math.pi / _N_ORIENT
        ds = sin_t * math.cos(angle) - cos_t * math.sin(angle)
        dc = cos_t * math.cos(angle) + sin_t * math.sin(angle)
        spread = torch.exp(-(torch.atan2(ds, dc).abs() ** 2) / (2 * theta_sigma**2))
        bank.append(torch.stack([g * spread for g in radial]))
    return torch.stack(bank)


def _matlab_median(x: torch.Tensor) -> torch.Tensor:
    """Median over the last dim, the mean of the two middle values for even lengths (MATLAB ``median``)."""
    n = x.shape[-1]
    upper = torch.kthvalue(x, n // 2 + 1, dim=-1).values
    if n % 2:
        return upper
    return 0.5 * (torch.kthvalue(x, n // 2, dim=-1).values + upper)


def phase_congruency(lum: torch.Tensor) -> torch.Tensor:
    """Phase congruency map of FSIM's ``phasecong2`` of luminance ``(B, H, W)``, any scale and float dtype."""
    b, rows, cols = lum.shape
    bank = _log_gabor_bank(rows, cols, lum.device)  # (O, S, H, W), float64
    # noise model terms depend on the filters only (phasecong2's ifftFilterArray sums), in float64
    ifft_filters = torch.fft.ifft2(bank).real * math.sqrt(rows * cols)
    sum_an2 = (ifft_filters**2).sum(dim=(1, 2, 3))
    sum_ai_aj = 0.5 * ((ifft_filters.sum(dim=1) ** 2).sum(dim=(1, 2)) - sum_an2)
    em_n = (bank[:, 0] ** 2).sum(dim=(1, 2))
    spectrum = torch.fft.fft2(lum)
    bank = bank.to(lum.dtype)
    energy_all = torch.zeros_like(lum)
    amp_all = torch.zeros_like(lum)
    for o in range(_N_ORIENT):
        eo = torch.fft.ifft2(spectrum[:, None] * bank[o])  # (B, S, H, W) complex
        even, odd, amp = eo.real, eo.imag, eo.abs()
        sum_e, sum_o = even.sum(dim=1, keepdim=True), odd.sum(dim=1, keepdim=True)
        x_energy = torch.sqrt(sum_e**2 + sum_o**2) + _EPS_PC
        mean_e, mean_o = sum_e / x_energy, sum_o / x_energy
        energy = (even * mean_e + odd * mean_o - (even * mean_o - odd * mean_e).abs()).sum(dim=1)
        # noise threshold (phasecong2): Rayleigh model fitted to the finest-scale median energy
        median_e2n = _matlab_median((amp[:, 0] ** 2).flatten(1)).double()  # (B,)
        noise_power = (-median_e2n / math.log(0.5)) / em_n[o]
        tau = torch.sqrt((2 * noise_power * sum_an2[o] + 4 * noise_power * sum_ai_aj[o]) / 2)
        threshold = (tau * math.sqrt(math.pi / 2) + _K_NOISE * math.sqrt(2 - math.pi / 2) * tau) / 1.7
        energy_all = energy_all + (energy - threshold.to(lum.dtype).view(-1, 1, 1)).clamp_min(0.0)
        amp_all = amp_all + amp.sum(dim=1)
    return energy_all / amp_all


def fsim(
    image: torch.Tensor,
    reference: torch.Tensor,
    *,
    chromatic: bool = True,
    crop_border: int = 0,
    data_range: float = 1.0,
) -> torch.Tensor:
    """FSIMc (``chromatic=True``, RGB input) or FSIM of ``image`` against ``reference``; returns ``(B,)``.

    Inputs ``(B, 1 or 3, H, W)`` in ``[0, data_range]``. Grey input gives FSIM for both settings.
    Computed in the input dtype (float32 agrees with float64 to about 1e-7).

    Example:
        >>> x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        >>> round(fsim(x, x).item(), 6)
        1.0
    """
    x, y = prepare_pair(
        image,
        reference,
        color="rgb",
        crop_border=crop_border,
        data_range=data_range,
        quantize=False,
        metric="fsim",
    )
    check_min_size(x, 8, "fsim", "phase congruency filters")
    b = x.shape[0]
    both = torch.cat([x, y]) * 255.0
    if both.shape[1] == 3:
        yiq = torch.einsum(
            "kc,bchw->bkhw", torch.tensor(YIQ_MATRIX, dtype=both.dtype, device=both.device), both
        )
    elif both.shape[1] == 1:
        yiq = both
    else:
        raise InputError(f"fsim: needs 1 or 3 channels, got {both.shape[1]}")
    factor = max(1, matlab_round(min(yiq.shape[-2:]) / 256))
    yiq = box_downsample(yiq, factor, pad="zeros")
    lum = yiq[:, 0]
    pc1, pc2 = phase_congruency(lum).split(b)
    g1, g2 = gradient_magnitude(yiq[:, :1], _SCHARR_X, 16.0, eps=1e-20)[:, 0].split(b)
    pc_max = torch.maximum(pc1, pc2)
    sim = similarity(pc1, pc2, _T_PC) * similarity(g1, g2, _T_G)
    if chromatic and yiq.shape[1] == 3:
        i1, i2 = yiq[:, 1].split(b)
        q1, q2 = yiq[:, 2].split(b)
        chroma = similarity(i1, i2, _T_CHROMA) * similarity(q1, q2, _T_CHROMA)
        # real part of a real base to a fractional power, as MATLAB's real((.)^lambda)
        sim = sim * chroma.abs().pow(_LAMBDA) * torch.where(chroma < 0, math.cos(_LAMBDA * math.pi), 1.0)
    return (sim * pc_max).sum(dim=(-2, -1)) / pc_max.sum(dim=(-2, -1))
