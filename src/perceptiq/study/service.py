"""The logic of a 2AFC study, without the web: create a study, start sessions, serve trials, record votes.

The web app (:mod:`perceptiq.study.web`) and the command line call these functions and nothing else, so a
vote inserted by a test or an import goes through exactly the checks that a vote posted by a browser does.

A session's trials are planned once, when it starts, from a recorded seed (:func:`plan_session`): the order,
which image is on the left, the sampled subset of pairs (``pairs_per_session``) and the repeated pairs.
Every gold pair is shown once; every regular pair at most once, plus a flagged repeat of ``repeats`` of them,
shown later with the sides swapped (P.910's trapping and consistency checks; ITU-T P.910, 2022, Annex B).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession

from perceptiq.errors import DataFileError, InputError
from perceptiq.study.db import Database
from perceptiq.study.models import Image, Pair, Study, StudySession, Trial, Vote, utcnow

__all__ = [
    "DuplicateVoteError",
    "ForbiddenTokenError",
    "InvalidVoteError",
    "PairSpec",
    "PlannedTrial",
    "StudyError",
    "StudyExistsError",
    "StudyNotFoundError",
    "StudySettings",
    "TrialView",
    "UnknownTokenError",
    "VoteIn",
    "cached_study",
    "create_study",
    "get_study",
    "hash_token",
    "make_gold_pairs",
    "next_trial",
    "plan_session",
    "read_pairs",
    "record_votes",
    "start_session",
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


@dataclass(frozen=True)
class PairSpec:
    """One row of a pairs file: image names relative to the image folder, their methods, the gold answer."""

    image_a: str
    image_b: str
    method_a: str
    method_b: str
    group: str = ""
    gold: str | None = None


_IMAGE_COLUMNS = (("path_a", "path_b"), ("image_a", "image_b"), ("name1_column", "name2_column"))
_IMAGE_COLUMNS += (("first", "second"), ("left", "right"))


def _relative_name(raw: str, image_dir: Path, where: str, path: Path) -> str:
    """The file's path relative to ``image_dir`` (posix), refusing any path that leaves it."""
    if not raw:
        raise DataFileError(path, f"{where}: empty image name")
    candidate = Path(raw)
    options = [candidate] if candidate.is_absolute() else [image_dir / candidate, Path.cwd() / candidate]
    root = image_dir.resolve()
    for option in options:
        resolved = option.resolve()
        if resolved.is_relative_to(root) and resolved.exists():
            return resolved.relative_to(root).as_posix()
    first = options[0].resolve()
    if not first.is_relative_to(root):
        raise DataFileError(path, f"{where}: {raw!r} is outside the image folder {image_dir}")
    raise DataFileError(path, f"{where}: image {raw!r} not found in {image_dir}")


def read_pairs(path: str | Path, image_dir: str | Path) -> list[PairSpec]:
    """Read a pairs file: the CSV of ``perceptiq mad`` (``path_a, path_b, method_a, method_b``) or any table
    with two image columns (``image_a/image_b``, ``name1_column/name2_column`` as in RealSR-1K's
    ``sr_subjective_results.csv``, ``first/second`` or ``left/right``), optional ``method_a/method_b``
    (default: the file-name suffix after the last ``_``), ``group`` and ``gold`` (``a`` or ``b``, or the
    method or image name of the obviously better image of a gold pair). Paths are relative to
    ``image_dir`` (or absolute inside it)."""
    from perceptiq.io.tables import read_table
    from perceptiq.io.votes import method_of_images

    path, image_dir = Path(path), Path(image_dir)
    if not image_dir.is_dir():
        raise DataFileError(image_dir, "image folder not found")
    frame = read_table(path, as_text=True)
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    columns = next((pair for pair in _IMAGE_COLUMNS if set(pair) <= set(frame.columns)), None)
    if columns is None:
        expected = " or ".join("/".join(pair) for pair in _IMAGE_COLUMNS)
        raise DataFileError(path, f"no image columns: expected {expected}; columns are {list(frame.columns)}")
    if frame.empty:
        raise DataFileError(path, "no pairs")
    a_col, b_col = columns
    names = {c: frame[c].str.strip() for c in columns}
    resolved = [
        tuple(_relative_name(names[c].iloc[row], image_dir, f"line {row + 2}, {c}", path) for c in columns)
        for row in range(len(frame))
    ]  # every path is checked before anything else is read from the file
    methods = {}
    for col, m_col in ((a_col, "method_a"), (b_col, "method_b")):
        if m_col in frame.columns:
            methods[m_col] = frame[m_col].str.strip().to_numpy(dtype=str)
        else:
            methods[m_col] = method_of_images(names[col].map(lambda s: Path(s).name), col, path)
    groups = frame["group"].str.strip() if "group" in frame.columns else None
    golds = frame["gold"].str.strip() if "gold" in frame.columns else None
    specs = []
    seen: set[tuple[str, str]] = set()
    for row in range(len(frame)):
        line = f"line {row + 2}"
        a, b = resolved[row]
        if a == b:
            raise DataFileError(path, f"{line}: image {a!r} is compared with itself")
        key = (min(a, b), max(a, b))
        if key in seen:
            raise DataFileError(path, f"{line}: the pair {a!r}, {b!r} is listed twice")
        seen.add(key)
        ma, mb = str(methods["method_a"][row]), str(methods["method_b"][row])
        gold = None
        if golds is not None and golds.iloc[row]:
            raw = golds.iloc[row]
            lookup = {"a": "a", "b": "b", ma: "a", mb: "b", names[a_col].iloc[row]: "a"}
            lookup[names[b_col].iloc[row]] = "b"
            if raw.lower() in ("a", "b"):
                gold = raw.lower()
            elif raw in lookup and ma != mb:
                gold = lookup[raw]
            else:
                raise DataFileError(
                    path, f"{line}: gold {raw!r} is neither 'a', 'b' nor one of the two images"
                )
        elif ma == mb:
            raise DataFileError(path, f"{line}: both images are of method {ma!r} (only a gold pair may be)")
        group = groups.iloc[row] if groups is not None else ""
        specs.append(PairSpec(a, b, ma, mb, group, gold))
    return specs


def _image_sizes(image_dir: Path, names: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Displayed (width, height) of every image (EXIF orientation applied, as a browser shows it)."""
    from perceptiq.io.images import probe_image

    sizes, errors = {}, []
    for name in names:
        try:
            height, width = probe_image(image_dir / name).display_size
            sizes[name] = (width, height)
        except DataFileError as err:
            errors.append(err)
    if errors:
        more = f" (and {len(errors) - 1} more unreadable image(s))" if len(errors) > 1 else ""
        raise DataFileError(errors[0].path, errors[0].problem + more)
    return sizes


def _check_name(name: str) -> str:
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


def create_study(
    db: Database,
    name: str,
    pairs: Sequence[PairSpec] | str | Path,
    image_dir: str | Path,
    settings: StudySettings | None = None,
    *,
    gold_pairs: int = 0,
) -> dict[str, object]:
    """Create study ``name`` from pairs (a pairs file or :class:`PairSpec` rows) of images in ``image_dir``.

    Every image is opened (header only) and its displayed size recorded; an unreadable one stops the
    creation with an error naming it. ``gold_pairs`` adds that many gold pairs made by
    :func:`make_gold_pairs`. Returns a summary (counts of pairs, gold pairs, images, methods)."""
    settings = settings or StudySettings()
    _check_name(name)
    image_dir = Path(image_dir)
    specs = read_pairs(pairs, image_dir) if isinstance(pairs, (str, Path)) else list(pairs)
    if not specs:
        raise InputError("a study needs at least one pair")
    regular = [p for p in specs if p.gold is None]
    if gold_pairs:
        sources = sorted({n for p in regular for n in (p.image_a, p.image_b)})
        specs += make_gold_pairs(image_dir, sources, gold_pairs)
    if settings.repeats > (settings.pairs_per_session or len(regular)):
        raise InputError(f"repeats={settings.repeats} exceeds the regular pairs shown to a participant")
    names = sorted({n for p in specs for n in (p.image_a, p.image_b)})
    sizes = _image_sizes(image_dir, names)
    with db.write_lock(), db.sessionmaker() as session, session.begin():
        if session.scalar(select(Study.id).where(Study.name == name)) is not None:
            raise StudyExistsError(f"a study named {name!r} already exists in this database")
        study = Study(
            name=name,
            image_dir=str(image_dir.resolve()),
            pairs_per_session=settings.pairs_per_session,
            repeats=settings.repeats,
            active=settings.active,
            max_gold_failure_rate=settings.max_gold_failure_rate,
            min_repeat_agreement=settings.min_repeat_agreement,
            instructions=settings.instructions,
        )
        images = {n: Image(name=n, width=sizes[n][0], height=sizes[n][1]) for n in names}
        study.images = list(images.values())
        study.pairs = [
            Pair(
                position=k,
                image_a=images[p.image_a],
                image_b=images[p.image_b],
                method_a=p.method_a,
                method_b=p.method_b,
                group=p.group,
                gold=p.gold,
            )
            for k, p in enumerate(specs)
        ]
        session.add(study)
    methods = sorted({m for p in regular for m in (p.method_a, p.method_b)})
    return {
        "study": name,
        "pairs": len(regular),
        "gold_pairs": len(specs) - len(regular),
        "images": len(names),
        "methods": methods,
        "image_dir": str(image_dir.resolve()),
    }


GOLD_FOLDER = "perceptiq_gold"
GOLD_BLUR_FRACTION = 0.02


def make_gold_pairs(image_dir: str | Path, names: Sequence[str], n: int, *, seed: int = 0) -> list[PairSpec]:
    """``n`` gold pairs: an image of the study beside a copy blurred with a Gaussian of radius 2% of its
    larger side (at least 3 pixels), an obvious defect (P.910's trapping questions; ITU-T P.910, 2022).

    The copies are written to ``image_dir/perceptiq_gold/`` (PNG); the original is the right answer."""
    from PIL import Image as PILImage
    from PIL import ImageFilter

    image_dir = Path(image_dir)
    if n < 0 or n > len(names):
        raise InputError(
            f"gold pairs: {n} requested, but the study has {len(names)} images to make them from"
        )
    rng = np.random.default_rng(seed)
    out = image_dir / GOLD_FOLDER
    specs = []
    for name in sorted(rng.choice(np.asarray(sorted(names)), size=n, replace=False).tolist()):
        target = f"{GOLD_FOLDER}/{Path(name).with_suffix('').as_posix().replace('/', '__')}_blurred.png"
        try:
            out.mkdir(exist_ok=True)
            with PILImage.open(image_dir / name) as img:
                radius = max(3.0, GOLD_BLUR_FRACTION * max(img.size))
                img.convert("RGB").filter(ImageFilter.GaussianBlur(radius)).save(image_dir / target)
        except OSError as err:
            raise DataFileError(image_dir / name, f"cannot make its gold copy ({err})") from None
        specs.append(PairSpec(name, target, "original", "blurred", "gold", "a"))
    return specs


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


class _ActiveCache:
    """The difference variances of a study's method pairs, recomputed at most every ``ttl`` seconds."""

    def __init__(self, ttl: float = 2.0) -> None:
        self.ttl, self.lock, self.entries = ttl, threading.Lock(), {}

    def variances(self, session: DbSession, study: Study) -> dict[tuple[str, str], float]:
        with self.lock:
            hit = self.entries.get(study.id)
            if hit is not None and time.monotonic() - hit[0] < self.ttl:
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
        with self.lock:
            self.entries[study.id] = (time.monotonic(), table)
        return table


_ACTIVE = _ActiveCache()


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
            variances = _ACTIVE.variances(session, study)
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
