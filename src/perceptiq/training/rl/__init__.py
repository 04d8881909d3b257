"""Reinforcement learning to rank (VisualQuality-R1, 003): answer parsing, rewards and GRPO advantages.

* :mod:`~perceptiq.training.rl.parsing`: ``<think>...</think><answer>...</answer>`` parser with typed
  failures, the reference's random fallback (injectable) and the format reward;
* :mod:`~perceptiq.training.rl.rewards`: comparative probabilities (eq. 1, eq. 7, fixed variance),
  the fidelity reward (eq. 3) and a binary reward, as pure functions and as picklable callables
  with TRL's reward signature (TRL itself is not imported);
* :mod:`~perceptiq.training.rl.advantages`: the group-standardised advantage (eq. 4).
"""

from __future__ import annotations

from perceptiq.training.rl.advantages import group_advantages
from perceptiq.training.rl.parsing import (
    ANSWER_PATTERNS,
    Fallback,
    ParseResult,
    ParseStatus,
    RandomIntegerFallback,
    format_reward,
    parse_answer,
    resolve_score,
)
from perceptiq.training.rl.rewards import (
    BinaryReward,
    FidelityReward,
    FormatReward,
    binary_reward,
    comparative_probabilities,
    completion_text,
    fidelity_reward,
    group_statistics,
    preference_labels,
)

__all__ = [
    "ANSWER_PATTERNS",
    "Fallback",
    "ParseResult",
    "ParseStatus",
    "RandomIntegerFallback",
    "format_reward",
    "parse_answer",
    "resolve_score",
    "group_statistics",
    "preference_labels",
    "comparative_probabilities",
    "fidelity_reward",
    "binary_reward",
    "completion_text",
    "FidelityReward",
    "BinaryReward",
    "FormatReward",
    "group_advantages",
]
