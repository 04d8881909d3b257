"""Registered full-reference metrics: thin wrappers over :mod:`perceptiq.functional.fr`.

Each class stores its options and calls one pure function; ``metric(image, reference)`` takes
``(B, C, H, W)`` (or ``(C, H, W)``) float tensors in ``[0, data_range]`` and returns ``(B,)``.
The options and the reference implementation each default reproduces are documented on the
functions; the class docstrings name the reference and the calibration data they are tested on.

Example:
    >>> import torch
    >>> from perceptiq.metrics.base import create_metric
    >>> metric = create_metric("ssim", color="y", crop_border=4)
    >>> x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    >>> metric(x, x).tolist(), metric.lower_is_better, metric.needs_reference
    ([1.0, 1.0], False, True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal

import torch

from perceptiq.errors import InputError
from perceptiq.functional._color import COLOR_SPACES, ColorSpace
from perceptiq.functional.fr._common import check_options
from perceptiq.functional.fr.fsim import fsim
from perceptiq.functional.fr.gmsd import gmsd
from perceptiq.functional.fr.ms_ssim import MS_SSIM_WEIGHTS, check_combination, ms_ssim
from perceptiq.functional.fr.psnr import psnr
from perceptiq.functional.fr.ssim import ssim
from perceptiq.functional.fr.vif import vif_p
from perceptiq.metrics.base import Metric, register_metric

__all__ = ["PSNR", "SSIM", "MSSSIM", "GMSD", "VIFp", "FSIM"]


def _common_options(color: str, crop_border: int, data_range: float, metric: str) -> dict[str, Any]:
    check_options(color, crop_border, data_range, metric)
    return {"color": color, "crop_border": crop_border, "data_range": float(data_range)}


class _FullReference(Metric):
    """Shared plumbing: ``function(image, reference, **options)``; the options are shown by ``repr``."""

    kind: ClassVar[Literal["FR", "NR"]] = "FR"
    is_differentiable: ClassVar[bool] = True
    colors: ClassVar[tuple[str, ...]] = tuple(COLOR_SPACES)
    function: ClassVar[Callable[..., torch.Tensor]]

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.options = options

    def compute(self, image: torch.Tensor, reference: torch.Tensor | None) -> torch.Tensor:
        if reference is None:
            raise InputError(f"metric {self.name!r} is full-reference: pass reference=")
        return type(self).function(image, reference, **self.options)

    def extra_repr(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{super().extra_repr()}, {opts}"


@register_metric
class PSNR(_FullReference):
    """Peak signal-to-noise ratio in dB (higher is better, ``inf`` for identical images).

    Default ``color="rgb"`` matches scikit-image ``peak_signal_noise_ratio`` and the TID2013
    calibration ``psnr`` row; ``color="y", crop_border=scale`` is the SR-paper convention.
    """

    name: ClassVar[str] = "psnr"
    lower_is_better: ClassVar[bool] = False
    score_range: ClassVar[tuple[float, float] | None] = None
    infinite_score: ClassVar[str] = "identical images (zero error): +inf, kept as a defined value"

    def __init__(
        self,
        *,
        color: ColorSpace = "rgb",
        crop_border: int = 0,
        data_range: float = 1.0,
        quantize: bool = False,
    ) -> None:
        super().__init__(**_common_options(color, crop_border, data_range, self.name), quantize=quantize)

    function = staticmethod(psnr)


@register_metric
class SSIM(_FullReference):
    """Structural similarity (Wang et al. 2004), range [-1, 1], higher is better.

    Default ``color="gray"``; with ``quantize=True`` it reproduces the authors' ``ssim.m`` on
    ``rgb2gray`` of 8-bit images (TID2013 calibration), ``downsample=True`` adds the script's
    automatic downsampling; ``color="rgb"`` equals scikit-image ``structural_similarity``
    (Gaussian weights, sigma 1.5, population covariance).
    """

    name: ClassVar[str] = "ssim"
    lower_is_better: ClassVar[bool] = False
    score_range: ClassVar[tuple[float, float] | None] = (-1.0, 1.0)

    def __init__(
        self,
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
    ) -> None:
        super().__init__(
            **_common_options(color, crop_border, data_range, self.name),
            quantize=quantize,
            downsample=downsample,
            kernel_size=kernel_size,
            sigma=sigma,
            k1=k1,
            k2=k2,
        )

    function = staticmethod(ssim)


@register_metric
class MSSSIM(_FullReference):
    """Multi-scale SSIM (Wang et al. 2003), range [0, 1], higher is better.

    Default product pooling (paper eq. 7, as piq/pyiqa); ``combination="sum"`` with
    ``quantize=True`` reproduces the TID2013 calibration values of ``msssim.m`` on ``rgb2gray``.
    """

    name: ClassVar[str] = "ms_ssim"
    lower_is_better: ClassVar[bool] = False
    score_range: ClassVar[tuple[float, float] | None] = (0.0, 1.0)

    def __init__(
        self,
        *,
        color: ColorSpace = "gray",
        crop_border: int = 0,
        data_range: float = 1.0,
        quantize: bool = False,
        weights: Sequence[float] = MS_SSIM_WEIGHTS,
        combination: Literal["product", "sum"] = "product",
    ) -> None:
        check_combination(combination)
        super().__init__(
            **_common_options(color, crop_border, data_range, self.name),
            quantize=quantize,
            weights=tuple(float(w) for w in weights),
            combination=combination,
        )

    function = staticmethod(ms_ssim)


@register_metric
class GMSD(_FullReference):
    """Gradient magnitude similarity deviation (Xue et al. 2014), 0 for identical images, lower is better.

    Reproduces the authors' ``GMSD.m``; on ``rgb2gray`` of 8-bit images (``quantize=True``) it
    matches the TID2013 and piq MATLAB values to about 1e-8.
    """

    name: ClassVar[str] = "gmsd"
    lower_is_better: ClassVar[bool] = True
    score_range: ClassVar[tuple[float, float] | None] = (0.0, 1.0)

    def __init__(
        self,
        *,
        color: ColorSpace = "gray",
        crop_border: int = 0,
        data_range: float = 1.0,
        quantize: bool = False,
    ) -> None:
        super().__init__(**_common_options(color, crop_border, data_range, self.name), quantize=quantize)

    function = staticmethod(gmsd)


@register_metric
class VIFp(_FullReference):
    """Pixel-domain visual information fidelity (Sheikh & Bovik 2006; ``vifp_mscale.m``), higher is better.

    Usually in [0, 1]; above 1 for contrast enhancement. Matches piq's MATLAB VIFp values. This is
    not the wavelet-domain VIF (``vifvec``) of the TID2013 calibration ``vif`` row.
    """

    name: ClassVar[str] = "vif_p"
    lower_is_better: ClassVar[bool] = False
    score_range: ClassVar[tuple[float, float] | None] = None

    def __init__(
        self,
        *,
        color: ColorSpace = "gray",
        crop_border: int = 0,
        data_range: float = 1.0,
        quantize: bool = False,
        sigma_n_sq: float = 2.0,
    ) -> None:
        super().__init__(
            **_common_options(color, crop_border, data_range, self.name),
            quantize=quantize,
            sigma_n_sq=sigma_n_sq,
        )

    function = staticmethod(vif_p)


@register_metric
class FSIM(_FullReference):
    """Feature similarity FSIMc / FSIM (Zhang et al. 2011; ``FeatureSIM.m``), range [0, 1], higher is better.

    ``chromatic=True`` (default) gives FSIMc on RGB input, matching the TID2013 calibration
    ``fsim`` row; ``chromatic=False`` gives FSIM, matching piq's MATLAB values.
    """

    name: ClassVar[str] = "fsim"
    lower_is_better: ClassVar[bool] = False
    score_range: ClassVar[tuple[float, float] | None] = (0.0, 1.0)
    colors: ClassVar[tuple[str, ...]] = ()  # FSIMc uses YIQ, FSIM its Y: no color option

    def __init__(self, *, chromatic: bool = True, crop_border: int = 0, data_range: float = 1.0) -> None:
        opts = _common_options("rgb", crop_border, data_range, self.name)
        del opts["color"]
        super().__init__(chromatic=chromatic, **opts)

    function = staticmethod(fsim)
