"""Input checks shared by the functional core, the metrics and the distortions."""

from __future__ import annotations

import torch

from perceptiq.errors import InputError

__all__ = ["as_batch", "usable_device"]


def as_batch(x: torch.Tensor, what: str, *, floating: bool = False, unit_range: bool = False) -> torch.Tensor:
    """``x`` as a batch ``(B, C, H, W)``: a single image ``(C, H, W)`` gets a batch axis of one.

    Args:
        x: the image tensor.
        what: how error messages name it (e.g. ``"image"``, ``"reference"``, ``"blur: image"``).
        floating: also require a floating-point dtype.
        unit_range: also require a non-empty tensor whose values all lie in ``[0, 1]`` (NaN fails).

    Raises:
        InputError: one line naming ``what`` and the problem.

    Example:
        >>> as_batch(torch.zeros(3, 4, 5), "image").shape
        torch.Size([1, 3, 4, 5])
    """
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{what}: expected a torch.Tensor image, got {type(x).__name__}")
    if x.ndim not in (3, 4):
        kind = "a float image" if floating else "an image"
        raise InputError(f"{what}: expected {kind} (B, C, H, W) or (C, H, W), got shape {tuple(x.shape)}")
    if floating and not x.is_floating_point():
        raise InputError(
            f"{what}: expected a float image, got dtype {x.dtype} (give a float tensor in [0, 1])"
        )
    if unit_range:
        if x.numel() == 0:
            raise InputError(f"{what}: the image is empty, shape {tuple(x.shape)}")
        low, high = x.min().item(), x.max().item()
        if not (low >= 0.0 and high <= 1.0):
            raise InputError(f"{what}: values must lie in [0, 1], got min {low:.4g} and max {high:.4g}")
    return x if x.ndim == 4 else x.unsqueeze(0)


def usable_device(device: object) -> torch.device:
    """``device`` as a :class:`torch.device` if this machine has it, else a one-line error.

    No silent fallback: a CUDA device asked for on a machine without CUDA is refused.

    Example:
        >>> usable_device("cpu")
        device(type='cpu')
    """
    try:
        dev = torch.device(device)  # type: ignore[arg-type]
    except (RuntimeError, TypeError):
        raise InputError(f"{device!r} is not a device (cpu, cuda, cuda:1, ...)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} requested but CUDA is not available on this machine")
    return dev
