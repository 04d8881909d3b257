"""A participant's side of a 2AFC study: the seeded session plan, the next trial and the votes.

A session's trials are planned once, when it starts, from a recorded seed (:func:`plan_session`): the order,
which image is on the left, the sampled subset of pairs (``pairs_per_session``) and the repeated pairs.
Every gold pair is shown once; every regular pair at most once, plus a flagged repeat of ``repeats`` of them,
shown later with the sides swapped (P.910's trapping and consistency checks; ITU-T P.910, 2022, Annex B).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession

from perceptiq.study.db import Database
from perceptiq.study.models import Image, Pair, Study, StudySession, Trial, Vote, utcnow
from perceptiq.study.service import (
    CHOICES,
    MAX_RESPONSE_MS,
    DuplicateVoteError,
    ForbiddenTokenError,
    InvalidVoteError,
    UnknownTokenError,
    cached_study,
    get_study,
)

__all__ = [
    "PlannedTrial",
    "TrialView",
    "VoteIn",
    "hash_token",
    "next_trial",
    "plan_session",
    "record_votes",
    "start_session",
]


@dataclass(frozen=True)
class PlannedTrial:
    """A trial of a session's plan: the pair, whether image b is on the left, and 0 or 1 for a repeat."""

    pair_id: int
    swapped: bool
    repeat: int


def plan_session(
    regular: Sequence[int],
    gold: Sequence[int],
    seed: int,
    *,
    pairs_per_session: int | None = None,
    repeats: int = 0,
) -> list[PlannedTrial]:
    """The trials of one session, in order, drawn from ``seed`` alone (so they can be re-derived).

    A random subset of ``pairs_per_session`` regular pairs (all when None) and every gold pair are
    shuffled, each with a random side; then ``repeats`` of the regular pairs shown are inserted again at a
    random later position with the sides swapped.
    """
    rng = np.random.default_rng(seed)
    chosen = rng.permutation(np.asarray(regular, dtype=np.int64))
    if pairs_per_session is not None:
        chosen = chosen[:pairs_per_session]
    shown = np.concatenate([chosen, np.asarray(gold, dtype=np.int64)])
    order = shown[rng.permutation(shown.size)]
    sides = rng.integers(0, 2, size=order.size).astype(bool)
    trials = [PlannedTrial(int(p), bool(s), 0) for p, s in zip(order, sides, strict=True)]
    n_repeats = min(repeats, chosen.size)
    for pair in rng.choice(chosen, size=n_repeats, replace=False) if n_repeats else []:
        first = next(k for k, t in enumerate(trials) if t.pair_id == pair and t.repeat == 0)
        at = int(rng.integers(first + 1, len(trials) + 1))
        trials.insert(at, PlannedTrial(int(pair), not trials[first].swapped, 1))
    return trials


def hash_token(token: str) -> str:
    """SHA-256 hex digest of a participant token: what the database stores instead of the token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start_session(
    db: Database, name: str, *, observer: str | None = None, seed: int | None = None
) -> tuple[str, int]:
    """Start a participant's session; returns ``(token, session id)``.

    The token (``secrets.token_urlsafe(32)``, 256 random bits) is returned once and only its digest is
    stored; the seed of the session's plan is drawn from ``secrets`` unless given, and recorded."""
    if observer is not None and not 0 < len(observer) <= 200:
        raise InvalidVoteError("observer must be 1 to 200 characters")
    token = secrets.token_urlsafe(32)
    seed = secrets.randbits(31) if seed is None else int(seed)
    with db.write_lock(), db.sessionmaker() as session, session.begin():
        study = get_study(session, name)
        rows = session.execute(select(Pair.id, Pair.gold).where(Pair.study_id == study.id).order_by(Pair.id))
        regular, gold = [], []
        for pair_id, gold_answer in rows:
            (regular if gold_answer is None else gold).append(pair_id)
        plan = plan_session(
            regular, gold, seed, pairs_per_session=study.pairs_per_session, repeats=study.repeats
        )
        record = StudySession(
            study_id=study.id, token_hash=hash_token(token), observer=observer or "", seed=seed,
            n_trials=len(plan),
        )  # fmt: skip
        session.add(record)
        session.flush()
        if not observer:
            record.observer = f"s{record.id}"
        session.execute(
            Trial.__table__.insert(),
            [
                {"session_id": record.id, "pair_id": t.pair_id, "position": k, "swapped": t.swapped,
                 "repeat": t.repeat}
                for k, t in enumerate(plan)
            ],
        )  # fmt: skip
        session_id = record.id
    return token, session_id


def _session_of(session: DbSession, study: Study, token: object) -> StudySession:
    if not isinstance(token, str) or not 0 < len(token) <= 200:
        raise UnknownTokenError("missing or malformed participant token")
    record = session.scalar(select(StudySession).where(StudySession.token_hash == hash_token(token)))
    if record is None:
        raise UnknownTokenError("unknown participant token")
    if record.study_id != study.id:
        raise ForbiddenTokenError(f"this token does not belong to study {study.name!r}")
    return record


@dataclass(frozen=True)
class TrialView:
    """What a participant is shown next: image ids and sizes left and right, and the progress."""

    trial_id: int
    left_id: int
    right_id: int
    left_size: tuple[int, int]
    right_size: tuple[int, int]
    done: int
    total: int


ACTIVE_TTL_S = 2.0
"""How long the method-pair difference variances of an active study are reused before they are recomputed."""


def _method_variances(db: Database, session: DbSession, study: Study) -> dict[tuple[str, str], float]:
    """The current Thurstone difference variances of the study's method pairs (both orders), cached on ``db``
    for :data:`ACTIVE_TTL_S` seconds."""
    with db.cache_lock:
        hit = db.variance_cache.get(study.id)
        if hit is not None and time.monotonic() - hit[0] < ACTIVE_TTL_S:
            return hit[1]
    from perceptiq.ranking.active import difference_variances

    methods = sorted(
        {
            m
            for row in session.execute(
                select(Pair.method_a, Pair.method_b).where(Pair.study_id == study.id, Pair.gold.is_(None))
            )
            for m in row
        }  # fmt: skip
    )
    index = {m: k for k, m in enumerate(methods)}
    counts = np.zeros((len(methods), len(methods)))
    rows = session.execute(
        select(Pair.method_a, Pair.method_b, Trial.swapped, Vote.choice)
        .join(Trial, Trial.pair_id == Pair.id)
        .join(Vote, Vote.trial_id == Trial.id)
        .where(Pair.study_id == study.id, Pair.gold.is_(None), Trial.repeat == 0)
    )
    for ma, mb, swapped, choice in rows:
        a_won = (choice == "left") != swapped
        winner, loser = (ma, mb) if a_won else (mb, ma)
        counts[index[winner], index[loser]] += 1
    pairs = [(index[a], index[b]) for a in methods for b in methods if index[a] < index[b]]
    var = difference_variances(counts, np.asarray(pairs, dtype=np.int64).reshape(-1, 2))
    table = {}
    for (i, j), v in zip(pairs, var, strict=True):
        table[(methods[i], methods[j])] = table[(methods[j], methods[i])] = float(v)
    with db.cache_lock:
        db.variance_cache[study.id] = (time.monotonic(), table)
    return table


def next_trial(db: Database, name: str, token: object) -> TrialView | None:
    """The session's next unanswered trial, or None when every trial is answered.

    In the planned order; with an ``active`` study, a regular trial is replaced by the session's remaining
    regular trial whose method pair has the largest current Thurstone difference variance."""
    study = cached_study(db, name)
    with db.sessionmaker() as session:
        record = _session_of(session, study, token)
        pending = (
            select(Trial, Pair)
            .join(Pair, Pair.id == Trial.pair_id)
            .outerjoin(Vote, Vote.trial_id == Trial.id)
            .where(Trial.session_id == record.id, Vote.id.is_(None))
        )
        first = session.execute(pending.order_by(Trial.position).limit(1)).first()
        if first is None:
            return None
        trial, pair = first
        if study.active and pair.gold is None and trial.repeat == 0:
            variances = _method_variances(db, session, study)
            candidates = session.execute(
                pending.where(Pair.gold.is_(None), Trial.repeat == 0).order_by(Trial.position)
            ).all()
            trial, pair = max(candidates, key=lambda tp: variances.get((tp[1].method_a, tp[1].method_b), 0.0))
        done = session.scalar(
            select(func.count(Vote.id))
            .join(Trial, Trial.id == Vote.trial_id)
            .where(Trial.session_id == record.id)
        )
        images = {
            i.id: i
            for i in session.scalars(select(Image).where(Image.id.in_([pair.image_a_id, pair.image_b_id])))
        }
        left, right = images[pair.image_a_id], images[pair.image_b_id]
        if trial.swapped:
            left, right = right, left
        return TrialView(
            trial_id=trial.id,
            left_id=left.id,
            right_id=right.id,
            left_size=(left.width, left.height),
            right_size=(right.width, right.height),
            done=int(done or 0),
            total=record.n_trials,
        )


@dataclass(frozen=True)
class VoteIn:
    """A vote as posted: the participant's token, the trial and ``"left"`` or ``"right"``."""

    token: object
    trial_id: object
    choice: object
    response_ms: object = None


def _check_vote(vote: VoteIn) -> tuple[int, str, int | None]:
    if isinstance(vote.trial_id, bool) or not isinstance(vote.trial_id, int) or vote.trial_id < 1:
        raise InvalidVoteError("trial_id must be a positive integer")
    if vote.choice not in CHOICES:
        raise InvalidVoteError(f"choice must be 'left' or 'right', got {vote.choice!r}")
    ms = vote.response_ms
    if ms is not None and (isinstance(ms, bool) or not isinstance(ms, int) or not 0 <= ms <= MAX_RESPONSE_MS):
        raise InvalidVoteError(f"response_ms must be an integer in [0, {MAX_RESPONSE_MS}]")
    return vote.trial_id, str(vote.choice), ms


def record_votes(db: Database, name: str, votes: Sequence[VoteIn]) -> int:
    """Validate and store votes in one transaction; returns how many were stored.

    Each vote must answer a trial of its token's session (:class:`ForbiddenTokenError` otherwise) that has
    no vote yet: the database's unique constraint on ``votes.trial_id`` refuses a second one
    (:class:`DuplicateVoteError`), even from concurrent requests. Nothing is stored unless all are valid.
    When this returns, the votes are committed."""
    checked = [(_check_vote(v), v.token) for v in votes]
    study = cached_study(db, name)
    with db.sessionmaker() as session:
        sessions: dict[object, StudySession] = {}
        for _, token in checked:
            if token not in sessions:
                sessions[token] = _session_of(session, study, token)
        ids = [trial_id for (trial_id, _, _), _ in checked]
        owner = dict(session.execute(select(Trial.id, Trial.session_id).where(Trial.id.in_(ids))).all())
        rows = []
        for (trial_id, choice, ms), token in checked:
            if owner.get(trial_id) != sessions[token].id:
                raise ForbiddenTokenError(f"trial {trial_id} is not a trial of this participant's session")
            rows.append({"trial_id": trial_id, "choice": choice, "response_ms": ms})
        try:
            with db.write_lock():
                session.execute(Vote.__table__.insert(), [r | {"created_at": utcnow()} for r in rows])
                session.commit()
        except IntegrityError:
            session.rollback()
            raise DuplicateVoteError("this trial has already been answered") from None
    return len(rows)
