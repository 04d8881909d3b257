"""Heatmap loss for structure-distortion maps: ``MSE + (1 - Dice-IoU)`` (Han et al., NTIRE 2025 T2I QA
report, eq. 9; team OPDAI).

Predicted and target heatmaps are (B, ...) tensors with values in [0, 1] (B images, any spatial
shape). The report does not define "Dice-IoU" and the team's code is not available; we offer the
soft Dice coefficient ``(2 sum(p t) + s) / (sum p + sum t + s)`` (default), the soft IoU (Jaccard)
``(sum(p t) + s) / (sum p + sum t - sum(p t) + s)``, or their mean, each computed per image and
averaged over the batch. The smoothing ``s`` makes an empty prediction of an empty target score 1.
The MSE is the mean over all pixels of the batch.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from perceptiq.errors import InputError
from perceptiq.losses._checks import as_float

__all__ = ["soft_dice", "soft_iou", "heatmap_loss"]

Overlap = Literal["dice", "iou", "mean"]


def _flat_pair(pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    if not isinstance(pred, Tensor) or not pred.is_floating_point() or pred.ndim < 2:
        raise InputError("pred must be a floating-point heatmap tensor of shape (B, ...) with ndim >= 2")
    target = as_float(target, "target", like=pred)
    if target.shape != pred.shape:
        raise InputError(f"target has shape {tuple(target.shape)} but pred has shape {tuple(pred.shape)}")
    return pred.reshape(pred.shape[0], -1), target.reshape(target.shape[0], -1)


def soft_dice(pred: Tensor, target: Tensor, smooth: float = 1e-6) -> Tensor:
    """Soft Dice coefficient per image, shape (B,): ``(2 sum(p t) + s) / (sum p + sum t + s)``."""
    p, t = _flat_pair(pred, target)
    inter = (p * t).sum(dim=1)
    return (2.0 * inter + smooth) / (p.sum(dim=1) + t.sum(dim=1) + smooth)


def soft_iou(pred: Tensor, target: Tensor, smooth: float = 1e-6) -> Tensor:
    """Soft IoU (Jaccard) per image, shape (B,): ``(sum(p t) + s) / (sum p + sum t - sum(p t) + s)``."""
    p, t = _flat_pair(pred, target)
    inter = (p * t).sum(dim=1)
    return (inter + smooth) / (p.sum(dim=1) + t.sum(dim=1) - inter + smooth)


def heatmap_loss(pred: Tensor, target: Tensor, *, overlap: Overlap = "dice", smooth: float = 1e-6) -> Tensor:
    """``MSE + (1 - overlap)`` with the overlap averaged over the batch (Han et al., NTIRE 2025 T2I QA
    report, eq. 9)."""
    p, t = _flat_pair(pred, target)
    if overlap == "dice":
        score = soft_dice(p, t, smooth)
    elif overlap == "iou":
        score = soft_iou(p, t, smooth)
    elif overlap == "mean":
        score = 0.5 * (soft_dice(p, t, smooth) + soft_iou(p, t, smooth))
    else:
        raise InputError(f"overlap must be 'dice', 'iou' or 'mean', got {overlap!r}")
    return torch.mean((p - t) ** 2) + 1.0 - score.mean()
