"""The backend under a session: which dialect it is, its asyncpg connection (cityhealth.db.driver), SQLite's
datetime text."""

from __future__ import annotations

from datetime import UTC, datetime

from cityhealth.db.driver import is_postgres, pg_driver

__all__ = ["is_postgres", "pg_driver", "sqlite_datetime"]


def sqlite_datetime(moment: datetime) -> str:
    """A UTC instant as SQLAlchemy stores it in SQLite (naive UTC, microseconds), for driver-level writes."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
