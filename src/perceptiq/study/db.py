"""Open a study database by URL: SQLite in a file by default (WAL mode, no set-up), PostgreSQL by URL.

Opening runs the packaged Alembic migrations up to ``head``, so a database made by an older perceptiq is
upgraded in place and keeps its votes. SQLite connections use ``journal_mode=WAL`` (readers never block the
writer), ``synchronous=FULL`` (a commit survives a crash of the server or of the machine) and a
``busy_timeout`` so concurrent writers wait for the lock instead of failing.
"""

from __future__ import annotations

import contextlib
import threading
from importlib.resources import files
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from perceptiq.errors import InputError

__all__ = ["DEFAULT_URL", "Database", "database_url", "open_database"]

DEFAULT_URL = "sqlite:///perceptiq_study.db"
"""The database used when no ``--db`` is given: ``perceptiq_study.db`` in the working folder."""
SQLITE_BUSY_TIMEOUT_MS = 30_000


def database_url(db: str | Path | None) -> str:
    """A SQLAlchemy URL from ``--db``: a URL (``postgresql+psycopg://...``, ``sqlite:///...``) or a file path
    (a SQLite file); None gives :data:`DEFAULT_URL`."""
    if db is None:
        return DEFAULT_URL
    text = str(db)
    return text if "://" in text else f"sqlite:///{Path(text)}"


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001 - DB-API connection
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _migrate(engine: Engine) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(files("perceptiq.study") / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class Database:
    """An engine and its session factory, migrated to the current schema.

    ``write_lock()`` serialises this process's write transactions on SQLite: SQLite admits one writer at a
    time and a blocked writer polls with growing sleeps (up to 100 ms), so waiting on a Python lock instead
    keeps latency flat under many concurrent voters. Other databases lock rows themselves (no-op there).
    """

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise InputError(f"--db {url!r} is neither a file path nor a database URL") from None
        self.url = url
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict[str, object] = {}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        else:
            kwargs |= {"pool_size": 10, "max_overflow": 20, "pool_pre_ping": True}
        self.engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
            if parsed.database and not Path(parsed.database).parent.exists():
                raise InputError(f"{parsed.database}: the folder of the study database does not exist")
        if migrate:
            try:
                _migrate(self.engine)
            except OperationalError as err:
                raise InputError(f"cannot open the study database {parsed!r}: {err.orig}") from None
            except SQLAlchemyError as err:
                raise InputError(f"cannot migrate the study database {parsed!r}: {err}") from None
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        self._lock = threading.Lock() if self.is_sqlite else None
        self.study_cache: dict[str, object] = {}  # studies never change once created
        self.variance_cache: dict[int, tuple[float, dict[tuple[str, str], float]]] = {}  # active studies
        self.cache_lock = threading.Lock()

    def write_lock(self) -> contextlib.AbstractContextManager[object]:
        """Hold while writing (see the class docstring)."""
        return self._lock if self._lock is not None else contextlib.nullcontext()

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()


def open_database(db: str | Path | None = None) -> Database:
    """Open (creating and migrating when needed) the study database ``db`` (URL or SQLite file path)."""
    return Database(database_url(db))
