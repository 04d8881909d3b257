"""Visual information fidelity in the pixel domain (VIFp), Sheikh & Bovik, IEEE TIP 15(2), 2006.

The multi-scale pixel-domain approximation released by the authors as ``vifp_mscale.m``: at scales
``s = 1..4`` a Gaussian window of size ``N = 2^(5 - s) + 1`` and sigma ``N / 5`` gives local
statistics ("valid" windows); from scale 2 on, both images are first filtered with that scale's
window ("valid") and subsampled by 2. With ``g = s_xy / s_x^2`` and ``s_v^2 = s_y^2 - g s_xy``
(``x`` the reference, ``y`` the distorted image) and the script's guards for flat windows,

``VIFp = sum log10(1 + g^2 s_x^2 / (s_v^2 + s_n^2)) / sum log10(1 + s_x^2 / s_n^2)``

over all windows of all scales, with the visual noise variance ``s_n^2 = 2`` on the 0-255 scale.
Range [0, ~1] (can exceed 1 for contrast enhancement); higher is better. Not symmetric.

Conventions: ``color="gray"`` (default) with ``quantize=True`` is ``vifp_mscale.m`` on
``rgb2gray`` of 8-bit images. piq ``vif_p`` converts RGB with ``0.299 R + 0.587 G + 0.114 B``
without rounding, which differs from ``rgb2gray`` by less than 1e-4 of the range. The statistics
are computed in float64 whatever the input dtype, because the script's thresholds (``1e-10`` on the
0-255 scale) sit far below float32 cancellation error; the result is cast back to the input dtype.
For several channels the score is computed per channel and averaged.
"""

from __future__ import annotations

import torch

from perceptiq.functional._color import ColorSpace
from perceptiq.functional._filters import filter_separable_valid, gaussian_taps
from perceptiq.functional.fr._common import check_min_size, prepare_pair

__all__ = ["vif_p"]

_SCALES = 4
_TOL = 1e-10


def _vif_scale(
    x: torch.Tensor, y: torch.Tensor, taps: list[float], sigma_n_sq: float
) -> tuple[torch.Tensor, ...]:
    """Numerator and denominator sums of one scale, ``x`` reference and ``y`` distorted, on 0-255."""
    b = x.shape[0]
    mu_x, mu_y, e_xx, e_yy, e_xy = filter_separable_valid(torch.cat([x, y, x * x, y * y, x * y]), taps).split(
        b
    )
    s_xx = (e_xx - mu_x * mu_x).clamp_min(0.0)
    s_yy = (e_yy - mu_y * mu_y).clamp_min(0.0)
    s_xy = e_xy - mu_x * mu_y
    g = s_xy / (s_xx + _TOL)
    s_vv = s_yy - g * s_xy
    flat_ref = s_xx < _TOL
    g = torch.where(flat_ref, 0.0, g)
    s_vv = torch.where(flat_ref, s_yy, s_vv)
    s_xx = torch.where(flat_ref, 0.0, s_xx)
    flat_dist = s_yy < _TOL
    g = torch.where(flat_dist, 0.0, g)
    s_vv = torch.where(flat_dist, 0.0, s_vv)
    s_vv = torch.where(g < 0, s_yy, s_vv)
    g = g.clamp_min(0.0)
    s_vv = s_vv.clamp_min(_TOL)
    num = torch.log10(1.0 + g * g * s_xx / (s_vv + sigma_n_sq)).sum(dim=(-2, -1))
    den = torch.log10(1.0 + s_xx / sigma_n_sq).sum(dim=(-2, -1))
    return num, den


def vif_p(
    image: torch.Tensor,
    reference: torch.Tensor,
    *,
    color: ColorSpace = "gray",
    crop_border: int = 0,
    data_range: float = 1.0,
    quantize: bool = False,
    sigma_n_sq: float = 2.0,
) -> torch.Tensor:
    """VIFp of distorted ``image`` against ``reference``, ``(B, C, H, W)`` in ``[0, data_range]`` -> ``(B,)``.

    ``sigma_n_sq`` is the visual noise variance on the 0-255 scale. Images need at least 41 pixels
    per side (four scales of valid filtering).

    Example:
        >>> x = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(0))
        >>> round(vif_p(x, x).item(), 6)
        1.0
    """
    y, x = prepare_pair(
        image,
        reference,
        color=color,
        crop_border=crop_border,
        data_range=data_range,
        quantize=quantize,
        metric="vif_p",
    )
    check_min_size(x, 41, "vif_p", "four scales of valid Gaussian filtering")
    out_dtype = x.dtype
    x, y = x.double() * 255.0, y.double() * 255.0
    num = torch.zeros(x.shape[:2], dtype=x.dtype, device=x.device)
    den = torch.zeros_like(num)
    for scale in range(_SCALES):
        size = 2 ** (_SCALES - scale) + 1
        taps = gaussian_taps(size, size / 5.0)
        if scale > 0:
            b = x.shape[0]
            x, y = filter_separable_valid(torch.cat([x, y]), taps)[..., ::2, ::2].split(b)
        n, d = _vif_scale(x, y, taps, sigma_n_sq)
        num, den = num + n, den + d
    return (num / den).mean(dim=1).to(out_dtype)
