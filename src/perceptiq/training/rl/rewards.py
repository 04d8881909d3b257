"""Reinforcement-learning-to-rank rewards of VisualQuality-R1 (Wu et al., VisualQuality-R1, 2025; code
conventions in VisualQuality-R1 grpo_jsonl.py).

A batch holds B images, each with K sampled scores ``q_i^k`` (a (B, K) tensor, NaN = no score). For
image i, ``mu_i`` and ``sigma_i^2`` are the mean and unbiased (ddof = 1) variance of its valid scores.

* :func:`comparative_probabilities`, eq. 1 (``method="mean"``):
  ``p_k(i, j) = Phi((q_i^k - mu_j) / sqrt(sigma_i^2 + sigma_j^2 + gamma))``, gamma = 1e-6 in the code;
  eq. 7 (``method="average"``) averages ``Phi((q_i^k - q_j^k') / ...)`` over the K scores k' of j;
  ``variance=v`` fixes every image's variance to v (v = 1: the paper's Thurstone Case V ablation,
  "fix the variances in Eq. (7) to one", i.e. ``sqrt(2 + gamma)``).
* :func:`fidelity_reward`, eq. 3: ``sqrt(p g + eps) + sqrt((1 - p)(1 - g) + eps)`` with the MOS label
  g of eq. 2 (1, 0.5, 0) and eps = 1e-6 inside each root as in the code, averaged over the B - 1
  other images. Maximum ``sqrt(1 + eps) + sqrt(eps)`` (about 1.001), minimum ``2 sqrt(eps)``.
* :func:`binary_reward`: the paper's binary ablation (Table 4) has no released code; ours replaces p by
  its hard decision (1 if p > 0.5, 0 if p < 0.5, 0.5 if p = 0.5) and rewards agreement with g,
  averaged over partners.

Edge cases, as the reference: when a variance is undefined (K = 1, or one valid score) the code's
``Normal.cdf`` raises and it uses p = 0.5; the same value is used here. Zero variances with equal
means also give Phi(0) = 0.5. Deliberate differences: the diagonal j = i is excluded by
construction; a batch of one image (no partner) gives NaN rewards, returned as ``None`` by the TRL
callables (TRL's "no reward" signal); images whose scores are all missing are left out as partners.

The callable classes (:class:`FidelityReward`, :class:`BinaryReward`, :class:`FormatReward`) have
TRL's reward signature ``reward(prompts, completions, **kwargs) -> list[float | None]``, are
picklable and do not import TRL. Completions must arrive in consecutive blocks of
``num_generations`` per image (as in the reference, where all K completions of an image are on one
device); the MOS of each completion comes in ``kwargs[mos_key]``. The reference sums accuracy and
format rewards unweighted, i.e. TRL ``reward_funcs=[FidelityReward(K), FormatReward()]`` with
weights (1, 1).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor

from perceptiq.errors import InputError
from perceptiq.losses.pairwise import fidelity, normal_cdf, preference_target
from perceptiq.training.rl.parsing import (
    Fallback,
    RandomIntegerFallback,
    format_reward,
    parse_answer,
    resolve_score,
)

__all__ = [
    "group_statistics",
    "preference_labels",
    "comparative_probabilities",
    "fidelity_reward",
    "binary_reward",
    "completion_text",
    "FidelityReward",
    "BinaryReward",
    "FormatReward",
]

Method = Literal["mean", "average"]


def _scores(scores: Tensor | Sequence[Sequence[float]]) -> Tensor:
    x = scores if isinstance(scores, Tensor) else torch.as_tensor(scores, dtype=torch.float64)
    if not x.is_floating_point():
        x = x.to(torch.float64)
    if x.ndim != 2 or x.shape[1] < 1:
        raise InputError(f"scores must have shape (B, K) with K >= 1, got {tuple(x.shape)}")
    return x


def _mos(mos: Tensor | Sequence[float], like: Tensor) -> Tensor:
    m = torch.as_tensor(mos, dtype=like.dtype, device=like.device).reshape(-1)
    if m.shape[0] != like.shape[0]:
        raise InputError(f"mos has {m.shape[0]} values for {like.shape[0]} images")
    return m


def group_statistics(scores: Tensor | Sequence[Sequence[float]]) -> tuple[Tensor, Tensor]:
    """Per-image mean and unbiased variance of the valid (non-NaN) scores, each (B,).

    The variance is NaN with fewer than two valid scores (``torch.var`` of one value), the mean NaN
    with none.
    """
    x = _scores(scores)
    valid = ~torch.isnan(x)
    n = valid.sum(dim=1).to(x.dtype)
    mean = torch.where(valid, x, 0.0).sum(dim=1) / n
    dev = torch.where(valid, x - mean.unsqueeze(1), 0.0)
    var = (dev * dev).sum(dim=1) / (n - 1.0)
    return mean, torch.where(n >= 2, var, torch.full_like(var, float("nan")))


def preference_labels(mos: Tensor | Sequence[float]) -> Tensor:
    """Labels of eq. 2 for all ordered pairs, (B, B): 1 if MOS_i > MOS_j, 0.5 if equal, else 0."""
    m = torch.as_tensor(mos, dtype=torch.float64).reshape(-1) if not isinstance(mos, Tensor) else mos
    return preference_target(m.unsqueeze(1), m.unsqueeze(0))


def comparative_probabilities(
    scores: Tensor | Sequence[Sequence[float]],
    *,
    gamma: float = 1e-6,
    method: Method = "mean",
    variance: float | None = None,
) -> Tensor:
    """Comparative probabilities ``p[i, k, j] = p_k(x_i, x_j)``, shape (B, K, B) (Wu et al.,
    VisualQuality-R1, 2025, eqs. 1 and 7).

    ``p[i, :, i]`` is NaN (no self-comparison); NaN also where score ``q_i^k`` is missing or image j
    has no valid score. See the module docstring for ``method`` and ``variance``.
    """
    x = _scores(scores)
    mean, var = group_statistics(x)
    if variance is not None:
        var = torch.full_like(mean, float(variance))
    den = torch.sqrt(var.unsqueeze(1) + var.unsqueeze(0) + gamma)  # (B, B): [i, j]
    if method == "mean":
        p = normal_cdf((x.unsqueeze(2) - mean.view(1, 1, -1)) / den.unsqueeze(1))
    elif method == "average":
        diff = x.view(*x.shape, 1, 1) - x.view(1, 1, *x.shape)  # (B, K, B, K')
        p = torch.nanmean(normal_cdf(diff / den.view(den.shape[0], 1, den.shape[1], 1)), dim=3)
    else:
        raise InputError(f"method must be 'mean' (eq. 1) or 'average' (eq. 7), got {method!r}")
    comparable = ~torch.isnan(x).unsqueeze(2) & ~torch.isnan(mean).view(1, 1, -1)
    p = torch.where(torch.isnan(p) & comparable, 0.5, p)  # the reference's p = 0.5 when Phi fails
    self_pair = torch.eye(x.shape[0], dtype=torch.bool, device=x.device).unsqueeze(1)
    return p.masked_fill(self_pair, float("nan"))


def fidelity_reward(
    scores: Tensor | Sequence[Sequence[float]],
    mos: Tensor | Sequence[float],
    *,
    gamma: float = 1e-6,
    method: Method = "mean",
    variance: float | None = None,
    eps: float = 1e-6,
) -> Tensor:
    """Continuous fidelity reward of every sampled score, shape (B, K) (Wu et al., VisualQuality-R1, 2025,
    eq. 3).

    Mean over the other images j of ``sqrt(p g + eps) + sqrt((1 - p)(1 - g) + eps)``; NaN for missing
    scores and for a batch of one image.
    """
    x = _scores(scores)
    p = comparative_probabilities(x, gamma=gamma, method=method, variance=variance)
    g = preference_labels(_mos(mos, x)).unsqueeze(1)
    return torch.nanmean(1.0 - fidelity(p, g, eps), dim=2)


def binary_reward(
    scores: Tensor | Sequence[Sequence[float]],
    mos: Tensor | Sequence[float],
    *,
    gamma: float = 1e-6,
    method: Method = "mean",
    variance: float | None = None,
) -> Tensor:
    """Binary ranking reward (B, K): fraction of partners j where the hard decision on p equals g (ours)."""
    x = _scores(scores)
    p = comparative_probabilities(x, gamma=gamma, method=method, variance=variance)
    g = preference_labels(_mos(mos, x)).unsqueeze(1)
    hard = torch.where(p > 0.5, 1.0, torch.where(p < 0.5, 0.0, 0.5))
    hit = (hard == g).to(x.dtype)
    return torch.nanmean(torch.where(torch.isnan(p), float("nan"), hit), dim=2)


def completion_text(completion: Any) -> str:
    """Text of a TRL completion: a string, or a conversation (list of messages) whose last content is used."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        content = completion[-1].get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "".join(
                part.get("text", "")
                for part in content
                if isinstance(part, dict) and part.get("type") == "text"
            )
    raise InputError(f"cannot read a completion of type {type(completion).__name__}")


class _RankingReward(abc.ABC):
    """Shared parsing and grouping of the ranking rewards (TRL signature)."""

    __name__ = "ranking_reward"

    def __init__(
        self,
        num_generations: int,
        *,
        mos_key: str = "mos",
        pattern: Literal["train", "readme"] = "train",
        require_answer: bool = False,
        score_range: tuple[float, float] | None = None,
        fallback: Fallback | None | Literal["reference"] = "reference",
        failure_reward: float = 0.0,
        gamma: float = 1e-6,
        method: Method = "mean",
        variance: float | None = None,
    ) -> None:
        if num_generations < 1:
            raise InputError(f"num_generations must be >= 1, got {num_generations}")
        self.num_generations = int(num_generations)
        self.mos_key = mos_key
        self.parse_options = {
            "pattern": pattern,
            "require_answer": require_answer,
            "score_range": score_range,
        }
        self.fallback: Fallback | None = RandomIntegerFallback() if fallback == "reference" else fallback
        self.failure_reward = float(failure_reward)
        self.reward_options: dict[str, Any] = {"gamma": gamma, "method": method, "variance": variance}
        self.last_scores: list[float] = []  # the scores of the last call (after the fallback; NaN: none)

    @abc.abstractmethod
    def _compute(self, scores: Tensor, mos: Tensor) -> Tensor:
        """Rewards (B, K) from scores (B, K) (NaN = failed parse) and the images' MOS (B,)."""

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
    ) -> list[float | None]:
        k = self.num_generations
        if len(completions) % k:
            raise InputError(f"{len(completions)} completions are not a multiple of num_generations={k}")
        if self.mos_key not in kwargs:
            raise InputError(f"reward needs the MOS of each completion in the {self.mos_key!r} column")
        mos = torch.as_tensor(kwargs[self.mos_key], dtype=torch.float64).reshape(-1, k)
        if mos.shape[0] * k != len(completions) or bool((mos != mos[:, :1]).any()):
            raise InputError(
                f"{self.mos_key!r} must hold one MOS per completion, equal within each group of {k}"
            )
        values = []
        for c in completions:
            score = resolve_score(parse_answer(completion_text(c), **self.parse_options), self.fallback)
            values.append(float("nan") if score is None else score)
        scores = torch.tensor(values, dtype=torch.float64).reshape(-1, k)
        self.last_scores = scores.reshape(-1).tolist()
        rewards = self._compute(scores, mos[:, 0]).reshape(-1)
        failed = torch.isnan(scores.reshape(-1))
        out: list[float | None] = []
        for r, bad in zip(rewards.tolist(), failed.tolist(), strict=True):
            out.append(self.failure_reward if bad else (None if math.isnan(r) else r))
        return out


class FidelityReward(_RankingReward):
    """VisualQuality-R1 accuracy reward (eq. 3) with TRL's reward signature; see :func:`fidelity_reward`.

    Args:
        num_generations: K, completions per image (consecutive).
        mos_key: kwargs column holding each completion's MOS.
        pattern, require_answer, score_range: parsing options (:func:`~.parsing.parse_answer`).
        fallback: score for failed parses; ``"reference"`` = random integer in 1..5 (the code), a
            callable, or None (the completion gets ``failure_reward`` and is left out of the statistics).
        failure_reward: reward of a failed completion when ``fallback`` is None.
        gamma, method, variance: comparative-probability options (eq. 1 / eq. 7 / fixed variance).
        eps: inside each square root of the fidelity (1e-6 in the code).
    """

    __name__ = "fidelity_reward"

    def __init__(self, num_generations: int, *, eps: float = 1e-6, **options: Any) -> None:
        super().__init__(num_generations, **options)
        self.eps = eps

    def _compute(self, scores: Tensor, mos: Tensor) -> Tensor:
        return fidelity_reward(scores, mos, eps=self.eps, **self.reward_options)


class BinaryReward(_RankingReward):
    """Binary ranking reward with TRL's signature; see :func:`binary_reward` (options: FidelityReward's)."""

    __name__ = "binary_reward"

    def _compute(self, scores: Tensor, mos: Tensor) -> Tensor:
        return binary_reward(scores, mos, **self.reward_options)


class FormatReward:
    """Format reward (VisualQuality-R1 grpo_jsonl.py) with TRL's reward signature: 1.0 per well-formed
    completion, else 0."""

    __name__ = "format_reward"

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
    ) -> list[float | None]:
        return [format_reward(completion_text(c)) for c in completions]
