"""Parse ``<think>...</think><answer>...</answer>`` completions into a quality score (VisualQuality-R1).

Reference behaviour (VisualQuality-R1 grpo_jsonl.py, training code): take the **last**
``<answer>(.*?)</answer>``
block (DOTALL, case-sensitive tags), stripped; without any block, the whole text, stripped. The score
is the first match of ``-?\\d+(\\.\\d+)?`` as a float ("3." -> 3, ".5" -> 5, "4/5" -> 4), not clamped.
The README inference snippet uses ``\\d+(\\.\\d+)?`` instead (the minus sign is dropped: "-1.5" -> 1.5).
When no number is found the reference draws ``random.randint(1, 5)`` (its other exception branch,
``random.uniform(1, 5)``, cannot be reached with these patterns).

Here the parse returns a typed :class:`ParseResult`; what to do on failure is a separate, injectable
``fallback`` (:class:`RandomIntegerFallback` reproduces the reference). The statuses:

==================  ===========================================================================
``ok``              a number was found (and lies in ``score_range`` when one is given)
``missing_answer``  no complete ``<answer>...</answer>`` block (an unclosed tag included) and
                    ``require_answer=True`` (by default the whole text is searched instead, as in
                    the reference)
``empty_answer``    the chosen answer (block content or whole text) is empty after stripping
``non_numeric``     the answer contains no number
``out_of_range``    a number was found outside ``score_range`` (``value`` keeps it)
==================  ===========================================================================

Reward these outputs get (see :mod:`perceptiq.training.rl.rewards`): with the default reference
fallback, any failure receives a random integer score in 1..5 that is then ranked like any other
score; with ``fallback=None`` a failed completion gets the reward's ``failure_reward`` (0 by
default, the minimum of the accuracy reward, up to its eps) and is left out of its image's mean
and variance. The format reward (:func:`format_reward`) is independent of parsing.
"""

from __future__ import annotations

import enum
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from perceptiq.errors import InputError

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

_ANSWER_BLOCK = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_FORMAT = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)

ANSWER_PATTERNS: dict[str, re.Pattern[str]] = {
    "train": re.compile(r"-?\d+(\.\d+)?"),  # grpo_jsonl.py accuracy reward
    "readme": re.compile(r"\d+(\.\d+)?"),  # README inference snippet (drops the minus sign)
}
"""Named number patterns: ``"train"`` (training reward code) and ``"readme"`` (README inference)."""


class ParseStatus(enum.Enum):
    """Outcome of :func:`parse_answer`."""

    OK = "ok"
    MISSING_ANSWER = "missing_answer"
    EMPTY_ANSWER = "empty_answer"
    NON_NUMERIC = "non_numeric"
    OUT_OF_RANGE = "out_of_range"


@dataclass(frozen=True)
class ParseResult:
    """A parsed completion.

    Attributes:
        status: what happened.
        value: the number found (also set for ``OUT_OF_RANGE``), else None.
        answer: the text the number was searched in (block content or whole text), else None.
        tagged: whether the answer came from an ``<answer>`` block.
    """

    status: ParseStatus
    value: float | None = None
    answer: str | None = None
    tagged: bool = False

    @property
    def ok(self) -> bool:
        """True when the parse succeeded."""
        return self.status is ParseStatus.OK

    @property
    def score(self) -> float | None:
        """The score when the parse succeeded, else None."""
        return self.value if self.ok else None


def parse_answer(
    text: str,
    *,
    pattern: Literal["train", "readme"] = "train",
    require_answer: bool = False,
    score_range: tuple[float, float] | None = None,
) -> ParseResult:
    """Parse one completion; the defaults reproduce the reference training parser exactly.

    Args:
        text: the completion text.
        pattern: ``"train"`` (``-?\\d+(\\.\\d+)?``) or ``"readme"`` (``\\d+(\\.\\d+)?``).
        require_answer: without an ``<answer>`` block, report ``MISSING_ANSWER`` instead of searching
            the whole text (reference: search the whole text).
        score_range: inclusive (low, high); a number outside it is ``OUT_OF_RANGE`` (reference: no
            range check).
    """
    if not isinstance(text, str):
        raise InputError(f"completion must be a string, got {type(text).__name__}")
    if pattern not in ANSWER_PATTERNS:
        raise InputError(f"pattern must be one of {sorted(ANSWER_PATTERNS)}, got {pattern!r}")
    blocks = _ANSWER_BLOCK.findall(text)
    if blocks:
        answer, tagged = blocks[-1].strip(), True
    elif require_answer:
        return ParseResult(ParseStatus.MISSING_ANSWER)
    else:
        answer, tagged = text.strip(), False
    if not answer:
        return ParseResult(ParseStatus.EMPTY_ANSWER, answer=answer, tagged=tagged)
    match = ANSWER_PATTERNS[pattern].search(answer)
    if match is None:
        return ParseResult(ParseStatus.NON_NUMERIC, answer=answer, tagged=tagged)
    value = float(match.group())
    if score_range is not None and not score_range[0] <= value <= score_range[1]:
        return ParseResult(ParseStatus.OUT_OF_RANGE, value=value, answer=answer, tagged=tagged)
    return ParseResult(ParseStatus.OK, value=value, answer=answer, tagged=tagged)


def format_reward(text: str) -> float:
    """1.0 iff the text is ``<think>...</think>``, whitespace, ``<answer>...</answer>`` (VisualQuality-R1
    grpo_jsonl.py).

    ``re.fullmatch`` with DOTALL and lazy blocks, as the reference: leading/trailing whitespace or text
    between the blocks gives 0; empty blocks give 1.
    """
    return 1.0 if _FORMAT.fullmatch(text) else 0.0


Fallback = Callable[[ParseResult], float | None]
"""A fallback maps a failed :class:`ParseResult` to a substitute score, or None for "no score"."""


class RandomIntegerFallback:
    """The reference's fallback: a uniform random integer in [low, high] (``random.randint(1, 5)``).

    Picklable; ``seed`` makes it reproducible (each instance owns its generator).
    """

    def __init__(self, low: int = 1, high: int = 5, seed: int | None = None) -> None:
        if low > high:
            raise InputError(f"low ({low}) must not exceed high ({high})")
        self.low = low
        self.high = high
        self._rng = random.Random(seed)

    def __call__(self, result: ParseResult) -> float:
        return float(self._rng.randint(self.low, self.high))

    def __repr__(self) -> str:
        return f"RandomIntegerFallback(low={self.low}, high={self.high})"


def resolve_score(result: ParseResult, fallback: Fallback | None) -> float | None:
    """The score a reward uses: the parsed score when OK, else ``fallback(result)`` (None if no fallback).

    Note that the reference uses an out-of-range number as is; reproduce that by parsing without
    ``score_range`` (the default).
    """
    if result.ok:
        return result.value
    if fallback is None:
        return None
    value = fallback(result)
    return None if value is None else float(value)
