"""Structural similarity (SSIM), Wang, Bovik, Sheikh & Simoncelli, IEEE TIP 13(4), 2004, eq. 13.

``SSIM = mean over windows of (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2))``
with local statistics under an 11x11 Gaussian window of sigma 1.5 (population covariances),
``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``, and only windows that lie inside the image ("valid").
Range [-1, 1] (1 = identical); higher is better.

Conventions and the reference each matches:

- ``color="gray"`` (default) + ``quantize=True``: the authors' MATLAB ``ssim.m`` on
  ``rgb2gray`` of 8-bit images, as in the TID2013 calibration values; ``downsample=True`` adds the
  script's automatic downsampling (factor ``f = max(1, round(min(H, W) / 256))`` with MATLAB
  rounding, ``imfilter`` box of ``f x f`` with symmetric padding, then every ``f``-th pixel).
- ``color="rgb"``: SSIM per channel, averaged; equals scikit-image ``structural_similarity`` with
  ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis`` and piq
  ``ssim(downsample=False)``.
- ``color="y", crop_border=s``: the super-resolution convention (BT.601 luma, border crop).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from perceptiq.functional._color import ColorSpace
from perceptiq.functional._filters import box_downsample, filter_separable_valid, gaussian_taps, matlab_round
from perceptiq.functional.fr._common import check_min_size, prepare_pair

__all__ = ["ssim", "ssim_components", "matlab_downsample_factor"]

_BLOCK_PIXELS = 1 << 18


def matlab_downsample_factor(height: int, width: int) -> int:
    """Downsampling factor of ``ssim.m``: ``max(1, round(min(H, W) / 256))`` with MATLAB rounding.

    Example:
        >>> matlab_downsample_factor(1152, 2040)  # round(4.5) = 5 in MATLAB
        5
    """
    return max(1, matlab_round(min(height, width) / 256))


def _block_sums(
    x: torch.Tensor, y: torch.Tensor, taps: Sequence[float], c1: float, c2: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sums of the SSIM and contrast-structure maps over the valid windows of ``(N, h, w)`` blocks."""
    n = x.shape[0]
    # one filtering pass over four moment maps stacked along the first dim; only the sum of the
    # two variances enters SSIM, so E[x^2] and E[y^2] are filtered as the single map x^2 + y^2
    mu_x, mu_y, e_sq, e_xy = filter_separable_valid(torch.cat([x, y, x * x + y * y, x * y]), taps).split(n)
    mu_xy = mu_x * mu_y
    mu_sq = mu_x * mu_x + mu_y * mu_y
    cs_map = ((e_xy - mu_xy) * 2.0 + c2) / (e_sq - mu_sq + c2)
    lum_map = (mu_xy * 2.0 + c1) / (mu_sq + c1)
    cs_flat = cs_map.flatten(1)
    return torch.linalg.vecdot(lum_map.flatten(1), cs_flat), cs_flat.sum(dim=1)


def ssim_components(
    x: torch.Tensor, y: torch.Tensor, taps: Sequence[float], c1: float, c2: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean SSIM and mean contrast-structure term ``(2 s_xy + C2) / (s_x^2 + s_y^2 + C2)`` per channel.

    ``x``, ``y``: ``(B, C, H, W)``; the window is ``taps' * taps`` applied "valid". Returns two
    ``(B, C)`` tensors. On CPU the maps are processed in blocks of about ``2^18`` input pixels
    (whole channels, or bands of rows with a ``len(taps) - 1`` halo for large images) so that the
    intermediate maps stay in cache, about 3x faster than one pass over the batch; other devices
    take the batch in one block. The result does not depend on the blocking.
    """
    b, c, h, w = x.shape
    halo = len(taps) - 1
    n_valid = (h - halo) * (w - halo)
    xf, yf = x.reshape(b * c, h, w), y.reshape(b * c, h, w)
    block_pixels = _BLOCK_PIXELS if x.device.type == "cpu" else b * c * h * w
    maps_per_block = max(1, block_pixels // (h * w))
    rows_per_band = h - halo if maps_per_block > 1 else max(1, block_pixels // w - halo)
    ssim_sums, cs_sums = [], []
    for m0 in range(0, b * c, maps_per_block):
        xm, ym = xf[m0 : m0 + maps_per_block], yf[m0 : m0 + maps_per_block]
        bands = [
            _block_sums(
                xm[:, r0 : r0 + rows_per_band + halo], ym[:, r0 : r0 + rows_per_band + halo], taps, c1, c2
            )
            for r0 in range(0, h - halo, rows_per_band)
        ]
        ssim_sums.append(torch.stack([s for s, _ in bands]).sum(dim=0))
        cs_sums.append(torch.stack([s for _, s in bands]).sum(dim=0))
    return (torch.cat(ssim_sums) / n_valid).view(b, c), (torch.cat(cs_sums) / n_valid).view(b, c)


def ssim(
    image: torch.Tensor,
    reference: torch.Tensor,
    *,
    color: ColorSpace = "gray",
    crop_border: int = 0,
    data_range: float = 1.0,
    quantize: bool = False,
    downsample: bool = False,
    kernel_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """SSIM of ``image`` against ``reference`` (``(B, C, H, W)`` in ``[0, data_range]``); returns ``(B,)``.

    Example:
        >>> x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        >>> ssim(x, x).tolist()
        [1.0, 1.0]
    """
    x, y = prepare_pair(
        image,
        reference,
        color=color,
        crop_border=crop_border,
        data_range=data_range,
        quantize=quantize,
        metric="ssim",
    )
    if downsample:
        factor = matlab_downsample_factor(*x.shape[-2:])
        x, y = box_downsample(x, factor), box_downsample(y, factor)
    check_min_size(x, kernel_size, "ssim", f"the {kernel_size}x{kernel_size} window")
    taps = gaussian_taps(kernel_size, sigma)
    ssim_val, _ = ssim_components(x, y, taps, k1 * k1, k2 * k2)
    return ssim_val.mean(dim=1)
