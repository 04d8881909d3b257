"""Seeded image distortions with a known order of severity (pure tensor functions).

Every distortion maps float images ``(B, C, H, W)`` (or ``(C, H, W)``) in [0, 1] to images of the same
shape, dtype, device and range. Randomness comes only from an explicit ``torch.Generator``. Each
distortion has one level parameter; :data:`DISTORTIONS` records its name and the direction in which it
gets stronger (``stronger="higher"``: larger values distort more; ``"lower"``: smaller values do, as for
JPEG quality). One module per family; (r) marks random distortions:

=========================  ============  ====================================================  ========
name                       module        level                                                 stronger
=========================  ============  ====================================================  ========
gaussian_blur              blur          sigma (px)                                            higher
motion_blur (r)            blur          length (px); the angle is drawn from the generator    higher
defocus_blur               blur          disk radius (px)                                      higher
gaussian_noise (r)         noise         sigma                                                 higher
poisson_noise (r)          noise         expected photons at white                             lower
color_noise (r)            noise         sigma of the Cb, Cr noise                             higher
luminance_noise (r)        noise         sigma of the luma (Y) noise, same on R, G, B          higher
jpeg                       compression   quality 1..100                                        lower
jpeg2000                   compression   compression ratio (needs OpenJPEG in Pillow)          higher
contrast                   photometric   contrast factor in [0, 1]                             lower
brightness                 photometric   additive shift                                        higher
saturation                 photometric   saturation factor in [0, 1]                           lower
quantize                   photometric   levels per channel                                    lower
pixelate                   resampling    tile size (px)                                        higher
downup_bicubic, _bilinear  resampling    scale factor of the down-up round trip                higher
downup_nearest, _lanczos   resampling    scale factor of the down-up round trip                higher
oversharpen                sr_artifacts  unsharp-mask amount                                   higher
ringing                    sr_artifacts  low-pass cutoff, fraction of Nyquist                  lower
hallucinated_texture (r)   sr_artifacts  RMS amplitude of the band-pass texture                higher
=========================  ============  ====================================================  ========

:data:`LADDERS` keeps the three-level ladders of ``perceptiq samples`` (names ``blur``, ``noise``,
``jpeg``, ``downup``; see :data:`ALIASES`); the five-level severity ladders
(:mod:`perceptiq.data.ladders`) are :data:`perceptiq.data.ladders.SEVERITIES`.

Example:
    >>> import torch
    >>> x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    >>> y = distort(x, "gaussian_noise", 0.05, seed=3)
    >>> y.shape == x.shape, bool(torch.equal(y, distort(x, "gaussian_noise", 0.05, seed=3)))
    (True, True)
    >>> DISTORTIONS["jpeg"].stronger
    'lower'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from perceptiq.data.distortions._common import require_generator
from perceptiq.data.distortions.blur import defocus_blur, gaussian_blur, motion_blur
from perceptiq.data.distortions.compression import (
    DistortionUnavailableError,
    jpeg2000_available,
    jpeg2000_compression,
    jpeg_compression,
)
from perceptiq.data.distortions.noise import color_noise, gaussian_noise, luminance_noise, poisson_noise
from perceptiq.data.distortions.photometric import (
    brightness_change,
    contrast_change,
    quantize,
    saturation_change,
)
from perceptiq.data.distortions.resampling import RESAMPLE_MODES, pixelate, resample_down_up
from perceptiq.data.distortions.sr_artifacts import hallucinated_texture, oversharpen, ringing
from perceptiq.errors import RegistryError

__all__ = [
    "Distortion",
    "DistortionUnavailableError",
    "DISTORTIONS",
    "ALIASES",
    "LADDERS",
    "distort",
    "resolve_name",
    "available_distortions",
    "gaussian_blur",
    "motion_blur",
    "defocus_blur",
    "gaussian_noise",
    "poisson_noise",
    "color_noise",
    "luminance_noise",
    "jpeg_compression",
    "jpeg2000_compression",
    "contrast_change",
    "brightness_change",
    "saturation_change",
    "quantize",
    "pixelate",
    "resample_down_up",
    "oversharpen",
    "ringing",
    "hallucinated_texture",
]


def _always() -> bool:
    return True


@dataclass(frozen=True)
class Distortion:
    """A registered distortion: ``function(image, level, **options)`` plus what its level means.

    Attributes:
        name: registry name.
        function: the pure function; its second argument is the level.
        parameter: what the level is (e.g. ``"sigma"``, ``"quality"``).
        stronger: ``"higher"`` if larger levels distort more, ``"lower"`` if smaller ones do.
        random: whether the function draws from a ``torch.Generator`` (passed as ``generator=``).
        options: fixed keyword arguments (e.g. the resampling kernel of ``downup_lanczos``).
        available: whether this installation can run it (JPEG 2000 needs OpenJPEG in Pillow).
    """

    name: str
    function: Callable[..., torch.Tensor]
    parameter: str
    stronger: Literal["higher", "lower"]
    random: bool = False
    options: tuple[tuple[str, object], ...] = ()
    available: Callable[[], bool] = _always

    def __call__(
        self, image: torch.Tensor, level: float, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Distort ``image`` at ``level``; random distortions need ``generator``."""
        if not self.available():
            raise DistortionUnavailableError(f"distortion {self.name!r} is unavailable in this installation")
        kwargs = dict(self.options)
        if self.random:
            kwargs["generator"] = require_generator(generator, self.name)
        return self.function(image, level, **kwargs)


_SPECS = [
    Distortion("gaussian_blur", gaussian_blur, "sigma", "higher"),
    Distortion("motion_blur", motion_blur, "length", "higher", random=True),
    Distortion("defocus_blur", defocus_blur, "radius", "higher"),
    Distortion("gaussian_noise", gaussian_noise, "sigma", "higher", random=True),
    Distortion("poisson_noise", poisson_noise, "peak", "lower", random=True),
    Distortion("color_noise", color_noise, "sigma", "higher", random=True),
    Distortion("luminance_noise", luminance_noise, "sigma", "higher", random=True),
    Distortion("jpeg", jpeg_compression, "quality", "lower"),
    Distortion("jpeg2000", jpeg2000_compression, "ratio", "higher", available=jpeg2000_available),
    Distortion("contrast", contrast_change, "factor", "lower"),
    Distortion("brightness", brightness_change, "delta", "higher"),
    Distortion("saturation", saturation_change, "factor", "lower"),
    Distortion("quantize", quantize, "levels", "lower"),
    Distortion("pixelate", pixelate, "block", "higher"),
    *(
        Distortion(f"downup_{mode}", resample_down_up, "factor", "higher", options=(("mode", mode),))
        for mode in RESAMPLE_MODES
    ),
    Distortion("oversharpen", oversharpen, "amount", "higher"),
    Distortion("ringing", ringing, "cutoff", "lower"),
    Distortion("hallucinated_texture", hallucinated_texture, "amplitude", "higher", random=True),
]

DISTORTIONS: dict[str, Distortion] = {spec.name: spec for spec in _SPECS}
"""Every distortion by name (see the module table)."""

ALIASES: dict[str, str] = {"blur": "gaussian_blur", "noise": "gaussian_noise", "downup": "downup_bicubic"}
"""Short names kept from the first version of this module (used by :data:`LADDERS`)."""

LADDERS: dict[str, tuple[float, ...]] = {
    "blur": (1.0, 2.0, 4.0),
    "noise": (0.02, 0.05, 0.1),
    "jpeg": (50, 20, 8),
    "downup": (2.0, 3.0, 4.0),
}
"""Three levels per distortion, mild to strong, for ``perceptiq samples`` (JPEG: lower quality = stronger)."""


def resolve_name(name: str) -> str:
    """The registered name of ``name`` (aliases resolved); a :class:`RegistryError` lists the known names."""
    key = ALIASES.get(name, name)
    if key not in DISTORTIONS:
        known = ", ".join([*DISTORTIONS, *ALIASES])
        raise RegistryError(f"unknown distortion {name!r}; choose from {known}")
    return key


def available_distortions() -> list[str]:
    """Names of the distortions this installation can run, in registry order."""
    return [name for name, spec in DISTORTIONS.items() if spec.available()]


def distort(image: torch.Tensor, name: str, level: float, seed: int = 0) -> torch.Tensor:
    """Apply distortion ``name`` (or an alias) at ``level``; random ones draw from ``Generator(seed)``."""
    spec = DISTORTIONS[resolve_name(name)]
    generator = torch.Generator().manual_seed(seed) if spec.random else None
    return spec(image, level, generator)
