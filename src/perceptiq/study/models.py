"""The study database: SQLAlchemy 2 ORM tables (the Alembic migrations in ``migrations/`` create them).

One database holds any number of studies. A vote is unique per trial (``UNIQUE(votes.trial_id)``), so a
double vote is refused by the database itself, whatever the web server does; a trial is unique per session,
pair and repeat index, so a participant sees a pair at most once (plus its deliberate, flagged repeat).
Participant tokens are stored as SHA-256 digests only: the database never holds a usable token.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = ["Base", "Image", "Pair", "Study", "StudySession", "Trial", "Vote", "utcnow"]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time in UTC (stored timezone-aware where the database can)."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Study(Base):
    """A named study: its image folder, settings and quality-control thresholds."""

    __tablename__ = "studies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    image_dir: Mapped[str] = mapped_column(Text)
    pairs_per_session: Mapped[int | None] = mapped_column(Integer, nullable=True)
    repeats: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    max_gold_failure_rate: Mapped[float] = mapped_column(Float, default=0.0)
    min_repeat_agreement: Mapped[float] = mapped_column(Float, default=0.5)
    instructions: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    images: Mapped[list[Image]] = relationship(back_populates="study", cascade="all, delete-orphan")
    pairs: Mapped[list[Pair]] = relationship(back_populates="study", cascade="all, delete-orphan")


class Image(Base):
    """An image file of the study, by its path relative to the study's folder, with its displayed size."""

    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("study_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(Text)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    study: Mapped[Study] = relationship(back_populates="images")


class Pair(Base):
    """Two images to compare and the methods that made them; ``gold`` names the obviously better image
    (``"a"``/``"b"``) of a gold (trapping) pair, None for a pair that enters the ranking."""

    __tablename__ = "pairs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    image_a_id: Mapped[int] = mapped_column(ForeignKey("images.id"))
    image_b_id: Mapped[int] = mapped_column(ForeignKey("images.id"))
    method_a: Mapped[str] = mapped_column(String(200))
    method_b: Mapped[str] = mapped_column(String(200))
    group: Mapped[str] = mapped_column(String(100), default="")
    gold: Mapped[str | None] = mapped_column(String(1), nullable=True)
    study: Mapped[Study] = relationship(back_populates="pairs")
    image_a: Mapped[Image] = relationship(foreign_keys=[image_a_id])
    image_b: Mapped[Image] = relationship(foreign_keys=[image_b_id])


class StudySession(Base):
    """One participant's run through a study: token digest, the seed of its order and sides, its observer."""

    __tablename__ = "sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    observer: Mapped[str] = mapped_column(String(200))
    seed: Mapped[int] = mapped_column(Integer)
    n_trials: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Trial(Base):
    """One presentation: a pair, its place in the session's order and which image is on the left."""

    __tablename__ = "trials"
    __table_args__ = (
        UniqueConstraint("session_id", "pair_id", "repeat"),
        UniqueConstraint("session_id", "position"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    swapped: Mapped[bool] = mapped_column(Boolean)
    repeat: Mapped[int] = mapped_column(Integer, default=0)
    pair: Mapped[Pair] = relationship()


class Vote(Base):
    """The answer to one trial; at most one per trial (enforced by the database)."""

    __tablename__ = "votes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), unique=True)
    choice: Mapped[str] = mapped_column(String(5))
    response_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
