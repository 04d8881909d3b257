"""Five-level quality ratings: MOS to level label, level probabilities to a score and its spread.

Level order here is Q-Align's, **descending**: ``("excellent", "good", "fair", "poor", "bad")`` (Wu et al.,
"Q-Align", 2023; Q-Align ``scorer.py``). (:mod:`perceptiq.losses.distribution` stores level vectors
ascending; ``probs.flip(-1)`` converts.)

* :func:`mos_to_level`: Q-Align's training labels, five equal-width bins of the dataset's MOS range,
  left-open / right-closed with a 1e-8 widening, the minimum falling in the lowest bin (DeQA-Score
  ``gen_soft_label.py`` ``get_level``).
* :func:`level_score`: ``sum_k p_k w_k`` with the Q-Align weights ``[1, 0.75, 0.5, 0.25, 0]``
  (``QAlignScorer``) or the DeQA / Q-Align README weights ``[5, 4, 3, 2, 1]``.
* :func:`level_score_std`: the standard deviation of that discrete distribution,
  ``sqrt(sum_k p_k (w_k - mu)^2)`` (DeQA-Score's predicted spread).
* :func:`level_probs_from_logits`: softmax over the five level-token logits (max-subtracted, unlike the
  Q-Align README's plain ``exp``, which overflows for logits above ~709).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from perceptiq.errors import InputError

__all__ = [
    "LEVEL_NAMES",
    "LEVEL_WEIGHTS",
    "level_weights",
    "mos_to_level",
    "mos_to_level_index",
    "level_probs_from_logits",
    "level_score",
    "level_score_std",
]

LEVEL_NAMES = ("excellent", "good", "fair", "poor", "bad")
"""The five level words, best first (Q-Align's order)."""

LEVEL_WEIGHTS: dict[str, tuple[float, ...]] = {
    "qalign": (1.0, 0.75, 0.5, 0.25, 0.0),
    "deqa": (5.0, 4.0, 3.0, 2.0, 1.0),
}
"""Named weightings of the levels (best first): ``"qalign"`` gives [0, 1], ``"deqa"`` gives [1, 5]."""

_EPS = 1e-8  # get_level's interval widening


def level_weights(
    name: str, *, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None
) -> Tensor:
    """The weights of weighting ``name`` (``"qalign"`` or ``"deqa"``), best level first, shape (5,)."""
    if name not in LEVEL_WEIGHTS:
        raise InputError(f"weighting must be one of {sorted(LEVEL_WEIGHTS)}, got {name!r}")
    return torch.tensor(LEVEL_WEIGHTS[name], dtype=dtype, device=device)


def mos_to_level_index(mos: Tensor | Sequence[float] | float, min_mos: float, max_mos: float) -> Tensor:
    """Bin index 1 (bad) .. 5 (excellent) of each MOS: bin k is ``(m + (k-1) w - 1e-8, m + k w + 1e-8]``,
    ``w = (M - m) / 5``, the first bin that holds the MOS (DeQA-Score ``get_level``).

    Raises:
        InputError: ``max_mos <= min_mos``, or a MOS outside the range (no bin holds it).
    """
    if not max_mos > min_mos:
        raise InputError(f"max_mos ({max_mos}) must exceed min_mos ({min_mos})")
    x = torch.as_tensor(mos, dtype=torch.float64).reshape(-1)
    width = (max_mos - min_mos) / 5.0
    out = torch.zeros(x.shape, dtype=torch.int64)
    for k in range(5, 0, -1):  # descending, so the first (lowest) bin that holds x wins
        left = min_mos + (k - 1) * width - _EPS
        right = min_mos + k * width + _EPS
        out = torch.where((x > left) & (x <= right), torch.full_like(out, k), out)
    if bool((out == 0).any()):
        bad = x[out == 0].tolist()
        raise InputError(f"MOS {bad} outside the dataset range [{min_mos}, {max_mos}]")
    return out


def mos_to_level(mos: Tensor | Sequence[float] | float, min_mos: float, max_mos: float) -> list[str]:
    """Q-Align level words of each MOS (see :func:`mos_to_level_index`), e.g. ``["bad", "fair"]``."""
    return [LEVEL_NAMES[5 - int(k)] for k in mos_to_level_index(mos, min_mos, max_mos)]


def level_probs_from_logits(logits: Tensor) -> Tensor:
    """Softmax over the last axis of (..., 5) level-token logits (best level first)."""
    if logits.shape[-1] != 5:
        raise InputError(f"need 5 level logits in the last axis, got shape {tuple(logits.shape)}")
    return torch.softmax(logits, dim=-1)


def _weights_like(probs: Tensor, weighting: str | Sequence[float]) -> Tensor:
    if isinstance(weighting, str):
        return level_weights(weighting, dtype=probs.dtype, device=probs.device)
    w = torch.as_tensor(weighting, dtype=probs.dtype, device=probs.device)
    if w.shape != (5,):
        raise InputError(f"need 5 level weights, got {list(w.shape)}")
    return w


def level_score(probs: Tensor, weighting: str | Sequence[float] = "qalign") -> Tensor:
    """``sum_k p_k w_k`` over the last axis of (..., 5) level probabilities (best level first)."""
    return (probs * _weights_like(probs, weighting)).sum(dim=-1)


def level_score_std(probs: Tensor, weighting: str | Sequence[float] = "deqa") -> Tensor:
    """``sqrt(sum_k p_k (w_k - mu)^2)``, ``mu = sum_k p_k w_k``: the spread of the level distribution."""
    w = _weights_like(probs, weighting)
    mu = (probs * w).sum(dim=-1, keepdim=True)
    return (probs * (w - mu) ** 2).sum(dim=-1).clamp_min(0).sqrt()
