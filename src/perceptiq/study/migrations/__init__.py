"""Alembic migrations of the study database, run by :func:`perceptiq.study.db.open_database`."""
