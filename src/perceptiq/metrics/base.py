"""The metric interface and the metric registry.

A metric is a thin ``torch.nn.Module`` over a pure function of ``perceptiq.functional``. It takes
float images in [0, 1], shape (B, C, H, W) (C = 3 for RGB, 1 for grey), on any device, and returns
one score per image, shape (B,). Full-reference (FR) metrics also take the reference batch.
"""

from __future__ import annotations

import abc
from typing import ClassVar, Literal

import torch

from perceptiq._registry import Registry
from perceptiq.errors import InputError
from perceptiq.functional._checks import as_batch

__all__ = ["Metric", "METRICS", "register_metric", "create_metric", "list_metrics"]


class Metric(torch.nn.Module, metaclass=abc.ABCMeta):
    """Base class of registered metrics.

    Subclasses set the class attributes and implement :meth:`compute`.

    Attributes:
        name: registry name.
        kind: ``"FR"`` (needs a reference) or ``"NR"`` (no reference).
        lower_is_better: True for distances (e.g. GMSD, NIQE), False for similarities (PSNR, SSIM).
        score_range: theoretical range of the score, or None when unbounded.
        is_differentiable: whether gradients flow to the input (usable as a loss).
        colors: values of the metric's ``color`` option, names of
            :data:`perceptiq.functional._color.COLOR_SPACES` (empty when it has no such option).
    """

    name: ClassVar[str] = ""
    kind: ClassVar[Literal["FR", "NR"]] = "NR"
    lower_is_better: ClassVar[bool] = False
    score_range: ClassVar[tuple[float, float] | None] = None
    is_differentiable: ClassVar[bool] = False
    colors: ClassVar[tuple[str, ...]] = ()

    @property
    def needs_reference(self) -> bool:
        """True for full-reference metrics."""
        return self.kind == "FR"

    def forward(self, image: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        """Score ``image`` (B, C, H, W) in [0, 1]; returns (B,)."""
        image = as_batch(image, "image", floating=True)
        if self.needs_reference:
            if reference is None:
                raise InputError(f"metric {self.name!r} is full-reference: pass reference=")
            reference = as_batch(reference, "reference", floating=True)
            if reference.shape != image.shape:
                raise InputError(
                    f"metric {self.name!r}: image shape {tuple(image.shape)} "
                    f"differs from reference shape {tuple(reference.shape)}"
                )
        return self.compute(image, reference)

    @abc.abstractmethod
    def compute(self, image: torch.Tensor, reference: torch.Tensor | None) -> torch.Tensor:
        """Metric-specific math on validated (B, C, H, W) tensors; returns (B,)."""

    def extra_repr(self) -> str:
        return f"name={self.name!r}, kind={self.kind}, lower_is_better={self.lower_is_better}"


METRICS: Registry[Metric] = Registry("metric")


def register_metric(cls: type[Metric]) -> type[Metric]:
    """Class decorator: register a :class:`Metric` subclass under ``cls.name``."""
    METRICS.register(cls.name)(cls)
    return cls


def create_metric(name: str, **options: object) -> Metric:
    """Create the metric registered as ``name`` with keyword ``options``.

    An option the metric does not take raises :class:`~perceptiq.errors.OptionError`, which names it
    and lists the accepted ones (``METRICS.options(name)``; ``perceptiq metrics`` shows them).

    Example:
        >>> import perceptiq
        >>> m = perceptiq.create_metric("psnr")  # doctest: +SKIP
    """
    return METRICS.create(name, **options)


def list_metrics(kind: Literal["FR", "NR"] | None = None) -> list[str]:
    """Registered metric names, optionally only full-reference or no-reference ones."""
    names = METRICS.names()
    if kind is None:
        return names
    return [n for n in names if getattr(METRICS.get(n), "kind", None) == kind]
