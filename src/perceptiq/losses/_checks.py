"""Input checks and small helpers shared by the loss modules (private).

The checks look at types and shapes, not at values: a value check such as ``isfinite().all()``
would force a host-device synchronisation on every training step.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from perceptiq.errors import InputError

Undefined = Literal["skip", "nan"]
"""What a loss does with pairs/groups on which it is undefined (batch of one, all-tie votes):
``"skip"`` leaves them out of the mean and returns 0 (with a zero gradient) when nothing is left;
``"nan"`` reproduces the reference code, whose empty mean is NaN."""


def as_vector(x: Tensor, name: str) -> Tensor:
    """Return ``x`` as a float vector (B,); accepts (B,), (B, 1) and 0-d tensors."""
    if not isinstance(x, Tensor):
        raise InputError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise InputError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.ndim == 0:
        return x.reshape(1)
    if x.ndim == 2 and x.shape[1] == 1:
        return x[:, 0]
    if x.ndim != 1:
        raise InputError(f"{name} must have shape (B,) or (B, 1), got {tuple(x.shape)}")
    return x


def as_float(x: Tensor, name: str, like: Tensor | None = None) -> Tensor:
    """Check that ``x`` is a tensor and return it as floating point (cast to ``like``'s dtype)."""
    if not isinstance(x, Tensor):
        raise InputError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if like is not None:
        return x.to(dtype=like.dtype, device=like.device)
    return x if x.is_floating_point() else x.to(torch.get_default_dtype())


def pair(
    pred: Tensor, target: Tensor, pred_name: str = "pred", target_name: str = "target"
) -> tuple[Tensor, Tensor]:
    """Validate a prediction vector and a target of the same length; the target takes pred's dtype."""
    pred = as_vector(pred, pred_name)
    target = as_float(target, target_name, like=pred)
    if target.ndim == 2 and target.shape[1] == 1:
        target = target[:, 0]
    if target.shape != pred.shape:
        raise InputError(
            f"{pred_name} has shape {tuple(pred.shape)} but {target_name} has shape {tuple(target.shape)}"
        )
    return pred, target


def check_undefined(undefined: str) -> None:
    """Validate the ``undefined`` option."""
    if undefined not in ("skip", "nan"):
        raise InputError(f"undefined must be 'skip' or 'nan', got {undefined!r}")


def empty_loss(anchor: Tensor, undefined: Undefined) -> Tensor:
    """The value of a mean over nothing: 0 wired to ``anchor`` (zero gradient) or NaN (reference)."""
    zero = anchor.sum() * 0.0
    return zero if undefined == "skip" else zero + float("nan")


def upper_pairs(n: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Indices (i, j) of all unordered pairs i < j of ``n`` items, row-major."""
    ij = torch.triu_indices(n, n, offset=1, device=device)
    return ij[0], ij[1]
