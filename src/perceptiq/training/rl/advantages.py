"""Group-standardised advantages of GRPO (Wu et al., VisualQuality-R1, 2025, eq. 4; VisualQuality-R1
grpo_trainer.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from perceptiq.errors import InputError

__all__ = ["group_advantages"]


def group_advantages(
    rewards: Tensor | Sequence[float],
    group_size: int,
    eps: float = 1e-4,
    single: Literal["zero", "reference"] = "zero",
) -> Tensor:
    """Advantage ``(r - mean_K(r)) / (std_K(r) + eps)`` within consecutive groups of ``group_size``.

    ``rewards`` (N,) holds the rewards of the K = ``group_size`` completions of each prompt one after
    the other; the std is torch's unbiased one and eps = 1e-4, as in the reference trainer. Returns a
    float tensor (N,). Deliberate difference: with ``group_size = 1`` the unbiased std is undefined and
    the reference's advantage is NaN; here it is 0 (``single="zero"``, no learning signal), and
    ``single="reference"`` gives the reference's NaN.
    """
    if single not in ("zero", "reference"):
        raise InputError(f"single must be 'zero' or 'reference', got {single!r}")
    r = rewards if isinstance(rewards, Tensor) else torch.as_tensor(rewards, dtype=torch.float64)
    if not r.is_floating_point():
        r = r.to(torch.float64)
    r = r.reshape(-1)
    if group_size < 1 or r.numel() % group_size:
        raise InputError(f"{r.numel()} rewards cannot be split into groups of {group_size}")
    if bool(torch.isnan(r).any()):
        bad = torch.nonzero(torch.isnan(r)).reshape(-1).tolist()
        raise InputError(
            f"rewards at positions {bad} are NaN (missing); fill them before computing advantages"
        )
    groups = r.reshape(-1, group_size)
    centred = groups - groups.mean(dim=1, keepdim=True)
    if group_size == 1:
        return torch.zeros_like(r) if single == "zero" else torch.full_like(r, float("nan"))
    return (centred / (groups.std(dim=1, keepdim=True) + eps)).reshape(-1)
