"""The VisualQuality-R1 answer parser, as used by the rewards; it lives in :mod:`perceptiq.functional.answers`
(pure text processing, shared with the ``vlm_reasoning`` model) and is re-exported here unchanged."""

from __future__ import annotations

from perceptiq.functional.answers import (
    ANSWER_PATTERNS,
    Fallback,
    ParseResult,
    ParseStatus,
    RandomIntegerFallback,
    format_reward,
    parse_answer,
    resolve_score,
)

__all__ = [
    "ParseStatus",
    "ParseResult",
    "ANSWER_PATTERNS",
    "parse_answer",
    "format_reward",
    "Fallback",
    "RandomIntegerFallback",
    "resolve_score",
]
