"""Classical no-reference metrics with the published parameters: NIQE and BRISQUE.

Both are lower-is-better and unbounded, work on a grey version of the image (``color="gray"``,
MATLAB ``rgb2gray`` of 8-bit values, by default, as the authors' scripts read 8-bit files; or
``color="y"``, the BT.601 luma of the FR metrics' ``color="y"``; ``"rgb"`` is refused) and score
every image of a batch at once, on the device of the input. The parameters ship in
``perceptiq/metrics/params`` (see ``PROVENANCE.md`` there): the authors' NIQE pristine model and the
authors' LIVE BRISQUE SVR.

These reproduce the authors' releases, not the MATLAB Image Processing Toolbox functions
``niqe()``/``brisque()``: the toolbox uses its own default models, not the releases' files, so
its numbers differ from the releases' on the same image (e.g. TID2013 I03: NIQE 15.75 release vs
7.20 toolbox, BRISQUE 94.64 vs 70.68).
"""

from __future__ import annotations

import io
import math
from functools import lru_cache
from importlib import resources

import numpy as np
import torch

from perceptiq.errors import InputError
from perceptiq.functional._color import GREY_COLOR_SPACES, check_color
from perceptiq.functional.nr.brisque import brisque
from perceptiq.functional.nr.niqe import niqe
from perceptiq.functional.nr.nss import GreyMode, to_grey255
from perceptiq.metrics.base import Metric, register_metric

__all__ = ["NIQE", "BRISQUE", "load_params"]


@lru_cache(maxsize=4)
def load_params(name: str) -> dict[str, np.ndarray]:
    """Arrays of a shipped parameter file (``"niqe_pristine"`` or ``"brisque_live"``), read once."""
    if name not in ("niqe_pristine", "brisque_live"):
        raise InputError(f"unknown parameter file {name!r}; shipped: niqe_pristine, brisque_live")
    data = resources.files("perceptiq").joinpath("metrics", "params", f"{name}.npz").read_bytes()
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def _check_image(name: str, image: torch.Tensor) -> None:
    if image.shape[1] not in (1, 3):
        raise InputError(f"{name}: expected 1 (grey) or 3 (RGB) channels, got {image.shape[1]}")
    lo, hi = (float(v) for v in torch.aminmax(image))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise InputError(f"{name}: image contains NaN or infinite values")
    if lo < -1e-3 or hi > 1.0 + 1e-3:
        raise InputError(
            f"{name}: image values must be in [0, 1], got [{lo:g}, {hi:g}] (divide 8-bit data by 255)"
        )


class _GreyNoReference(Metric):
    """Shared by NIQE and BRISQUE: options ``color`` and ``quantize``, scored on the grey 0-255 image."""

    kind = "NR"
    lower_is_better = True
    score_range = None
    is_differentiable = False
    colors = GREY_COLOR_SPACES

    def __init__(self, color: GreyMode, quantize: bool) -> None:
        super().__init__()
        self.color = check_color(color, self.name, self.colors)
        self.quantize = bool(quantize)

    def _grey255(self, image: torch.Tensor) -> torch.Tensor:
        """The checked ``image`` as grey values on the 0-255 scale (``color``, ``quantize``)."""
        _check_image(self.name, image)
        return to_grey255(image, self.color, quantize=self.quantize)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, color={self.color!r}, quantize={self.quantize}"


@register_metric
class NIQE(_GreyNoReference):
    """Natural Image Quality Evaluator (Mittal, Soundararajan and Bovik, IEEE SPL 2013); lower is better.

    Args:
        color: grey conversion of RGB input, ``"gray"`` (MATLAB ``rgb2gray``, default, as the
            published values) or ``"y"`` (BT.601 luma, the convention of many super-resolution papers).
        quantize: round to 8-bit levels like the original scripts, which read 8-bit files.
        patch_size: side of the square patches (the published model was fitted with 96).

    Images need at least ``patch_size`` pixels on each side. The score is NaN for an image whose
    patches are all flat (e.g. a constant image): every patch's features are undefined (the
    authors' release can return a number there only through floating-point rounding noise, see
    :func:`~perceptiq.functional.nr.nss.mscn`). Batch scoring
    (:func:`perceptiq.scoring.score_files`) turns it into an error row saying so.
    """

    name = "niqe"
    undefined_reason = "NIQE is undefined when every patch is flat (no natural-scene statistics)"

    def __init__(self, color: GreyMode = "gray", quantize: bool = True, patch_size: int = 96) -> None:
        super().__init__(color, quantize)
        self.patch_size = int(patch_size)
        params = load_params("niqe_pristine")
        self.register_buffer("mu", torch.as_tensor(params["mu"]), persistent=False)
        self.register_buffer("cov", torch.as_tensor(params["cov"]), persistent=False)

    def compute(self, image: torch.Tensor, reference: torch.Tensor | None) -> torch.Tensor:
        grey = self._grey255(image)
        return niqe(grey, self.mu, self.cov, self.patch_size).to(image.dtype)


@register_metric
class BRISQUE(_GreyNoReference):
    """Blind/Referenceless Image Spatial Quality Evaluator (Mittal, Moorthy and Bovik, IEEE TIP 2012).

    Lower is better; about 0 to 100 on typical images (the SVR can leave that range). Uses the
    authors' SVR trained on the whole LIVE IQA database.

    Args:
        color: grey conversion of RGB input, ``"gray"`` (MATLAB ``rgb2gray``, default) or ``"y"``
            (BT.601 luma).
        quantize: round to 8-bit levels like the original scripts.
        text_io: round features as the release's text files do (``%f``, then ``%g`` after
            scaling); moves scores by up to about 1e-3 and matches the published values closer.

    Images need at least 14 pixels on each side. The score is NaN for a flat (constant) image: its
    MSCN coefficients are all 0, so the GGD/AGGD fits are undefined (the authors' release returns a
    number there only because of floating-point rounding noise). Batch scoring
    (:func:`perceptiq.scoring.score_files`) turns it into an error row saying so.
    """

    name = "brisque"
    undefined_reason = "BRISQUE is undefined on a flat image (all MSCN coefficients are 0)"

    def __init__(self, color: GreyMode = "gray", quantize: bool = True, text_io: bool = True) -> None:
        super().__init__(color, quantize)
        self.text_io = bool(text_io)
        params = load_params("brisque_live")
        for key in ("support", "coef", "feature_min", "feature_max"):
            self.register_buffer(key, torch.as_tensor(params[key]), persistent=False)
        self.rho = float(params["rho"])
        self.gamma = float(params["gamma"])

    def compute(self, image: torch.Tensor, reference: torch.Tensor | None) -> torch.Tensor:
        grey = self._grey255(image)
        scores = brisque(
            grey,
            self.support,
            self.coef,
            self.rho,
            self.gamma,
            self.feature_min,
            self.feature_max,
            text_io=self.text_io,
        )
        return scores.to(image.dtype)
