"""What every part of a 2AFC study shares: its errors (each with the HTTP status the web app answers),
the study settings, name checks and reading a study row.

The logic lives in :mod:`perceptiq.study.creation` (pair files, images, gold pairs, creating a study) and
:mod:`perceptiq.study.sessions` (seeded session plans, next trial, votes); the web app
(:mod:`perceptiq.study.web`) and the command line call those functions and nothing else, so a vote inserted
by a test or an import goes through exactly the checks that a vote posted by a browser does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from perceptiq.errors import InputError
from perceptiq.study.db import Database
from perceptiq.study.models import Study

__all__ = [
    "CHOICES",
    "MAX_RESPONSE_MS",
    "NAME_PATTERN",
    "DuplicateVoteError",
    "ForbiddenTokenError",
    "InvalidVoteError",
    "StudyError",
    "StudyExistsError",
    "StudyNotFoundError",
    "StudySettings",
    "UnknownTokenError",
    "cached_study",
    "check_study_name",
    "get_study",
]

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
CHOICES = ("left", "right")
MAX_RESPONSE_MS = 86_400_000


class StudyError(InputError):
    """A request the study refuses; ``status`` is the HTTP status the web app answers with."""

    status = 400


class StudyNotFoundError(StudyError):
    status = 404


class StudyExistsError(StudyError):
    status = 409


class UnknownTokenError(StudyError):
    status = 401


class ForbiddenTokenError(StudyError):
    status = 403


class DuplicateVoteError(StudyError):
    status = 409


class InvalidVoteError(StudyError):
    status = 422


@dataclass(frozen=True)
class StudySettings:
    """How sessions are planned and when a participant is flagged.

    Attributes:
        pairs_per_session: regular pairs shown to each participant (a random subset, drawn from the
            session's seed); None shows every pair (a full design, as in RealSR-1K's 23 subjects).
        repeats: regular pairs shown a second time (sides swapped) to measure the observer's consistency.
        active: serve next the pair whose current Thurstone score difference is most uncertain
            (:func:`perceptiq.ranking.active.difference_variances`) instead of the planned order.
        max_gold_failure_rate: a participant failing a larger fraction of gold pairs is flagged.
        min_repeat_agreement: a participant agreeing with themself on a smaller fraction of repeats is
            flagged.
        instructions: text shown on the consent page (plain text; HTML is escaped).
    """

    pairs_per_session: int | None = None
    repeats: int = 0
    active: bool = False
    max_gold_failure_rate: float = 0.0
    min_repeat_agreement: float = 0.5
    instructions: str = ""

    def __post_init__(self) -> None:
        if self.pairs_per_session is not None and self.pairs_per_session < 1:
            raise InputError(f"pairs_per_session must be at least 1, got {self.pairs_per_session}")
        if self.repeats < 0:
            raise InputError(f"repeats must be >= 0, got {self.repeats}")
        for name in ("max_gold_failure_rate", "min_repeat_agreement"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"{name} must lie in [0, 1], got {getattr(self, name)!r}")


def check_study_name(name: str) -> str:
    """``name`` if it is a valid study name (letters, digits, '_', '.', '-'), else an :class:`InputError`."""
    if not NAME_PATTERN.match(name):
        raise InputError(
            f"study name {name!r}: use 1-100 letters, digits, '_', '.' or '-', starting with a letter or "
            "digit"
        )
    return name


def get_study(session: DbSession, name: str) -> Study:
    """The study called ``name`` (:class:`StudyNotFoundError` if none)."""
    study = session.scalar(select(Study).where(Study.name == name))
    if study is None:
        raise StudyNotFoundError(f"no study named {name!r} in this database")
    return study


def cached_study(db: Database, name: str) -> Study:
    """Study ``name`` as a detached row, read once per :class:`Database` (a study never changes)."""
    study = db.study_cache.get(name)
    if study is None:
        with db.sessionmaker() as session:
            study = get_study(session, name)
        db.study_cache[name] = study
    return study  # type: ignore[return-value]
