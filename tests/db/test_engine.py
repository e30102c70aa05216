"""The engine: URL mapping, SQLite durability pragmas, PostgreSQL durability refusal, UTC storage."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import text
from tests.conftest import BACKEND, PG_URL

from cityhealth.db.admin import execute_on_server
from cityhealth.db.engine import Database, async_url
from cityhealth.db.schema import current_revisions, ensure_durable
from cityhealth.db.types import UTCDateTime
from cityhealth.errors import ConfigurationError


def test_plain_urls_get_the_platforms_async_driver() -> None:
    assert async_url("sqlite:///var/x.sqlite").drivername == "sqlite+aiosqlite"
    assert async_url("postgresql://postgres@127.0.0.1:5432/db").drivername == "postgresql+asyncpg"


@pytest.mark.parametrize("url", ["mysql://root@localhost/db", "not a url"])
def test_unsupported_database_urls_are_refused_naming_the_setting(url: str) -> None:
    with pytest.raises(ConfigurationError, match="CITYHEALTH_DATABASE_URL"):
        async_url(url)


@pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite pragmas")
async def test_sqlite_runs_in_wal_with_full_sync_and_foreign_keys(database: Database) -> None:
    async with database.engine.connect() as connection:
        assert (await connection.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await connection.execute(text("PRAGMA synchronous"))).scalar() == 2  # FULL
        assert (await connection.execute(text("PRAGMA foreign_keys"))).scalar() == 1


@pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's file lock")
async def test_sqlite_readers_do_not_wait_for_a_writer_holding_the_lock(database: Database) -> None:
    # A writer whose commit a slow disk holds keeps the file's write lock; the readiness check and the single
    # reads used to begin IMMEDIATE and so waited for it (up to the 30 s busy timeout).
    async with database.transaction() as session:
        await session.execute(text("CREATE TABLE probe (n INTEGER)"))
        await session.execute(text("INSERT INTO probe VALUES (1)"))
    writer = sqlite3.connect(str(database.url.database), isolation_level=None, timeout=0)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO probe VALUES (2)")  # not committed: the write lock stays held
        await asyncio.wait_for(database.ping(), timeout=5)
        await asyncio.wait_for(current_revisions(database), timeout=5)  # the readiness check's other read
        async with database.read_connection() as connection:
            seen = (await asyncio.wait_for(connection.execute(text("SELECT n FROM probe")), timeout=5)).scalars().all()
        assert seen == [1]  # the last committed state
    finally:
        writer.rollback()
        writer.close()


@pytest.mark.skipif(BACKEND != "postgresql", reason="PostgreSQL settings")
@pytest.mark.parametrize("setting", ["synchronous_commit", "fsync", "full_page_writes"])
async def test_postgresql_losing_commits_is_refused_naming_the_setting(database: Database, setting: str) -> None:
    await ensure_durable(database)  # the test server itself is durable
    name = database.url.database
    if setting == "synchronous_commit":
        await execute_on_server(PG_URL, f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        await database.engine.dispose()
        with pytest.raises(ConfigurationError, match="synchronous_commit=off"):
            await ensure_durable(database)
    else:
        # fsync and full_page_writes are server-wide; check the message with a stand-in value.
        from cityhealth.db import schema

        original = dict(schema._DURABILITY_SETTINGS)
        schema._DURABILITY_SETTINGS[setting] = "impossible"
        try:
            with pytest.raises(ConfigurationError, match=f"PostgreSQL has {setting}=on; cityhealth refuses"):
                await ensure_durable(database)
        finally:
            schema._DURABILITY_SETTINGS.clear()
            schema._DURABILITY_SETTINGS.update(original)


def test_utc_column_refuses_naive_datetimes() -> None:
    column = UTCDateTime()
    with pytest.raises(ValueError, match="naive"):
        column.process_bind_param(datetime(2022, 6, 1), _Dialect("postgresql"))  # noqa: DTZ001


def test_utc_column_stores_utc_and_reads_back_aware() -> None:
    column = UTCDateTime()
    shanghai = timezone(timedelta(hours=8))
    stored = column.process_bind_param(datetime(2022, 6, 1, 8, 0, tzinfo=shanghai), _Dialect("sqlite"))
    assert stored == datetime(2022, 6, 1, 0, 0)  # noqa: DTZ001 - SQLite keeps the UTC wall time
    assert column.process_result_value(stored, _Dialect("sqlite")) == datetime(2022, 6, 1, tzinfo=UTC)


class _Dialect:
    def __init__(self, name: str) -> None:
        self.name = name


@pytest.mark.skipif(BACKEND != "postgresql", reason="PostgreSQL connection pool")
async def test_an_idle_pooled_connection_that_died_is_replaced_before_use(
        database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    async with database.engine.connect() as connection:
        pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar()
    # The server restarts, or an idle timeout ends the session, while the connection waits in the pool.
    await execute_on_server(PG_URL, f"SELECT pg_terminate_backend({int(pid or 0)})")
    monkeypatch.setattr("cityhealth.db.engine.PING_AFTER_IDLE_S", 0.0)
    async with database.transaction() as session:
        assert (await session.execute(text("SELECT pg_backend_pid()"))).scalar() != pid


@pytest.mark.skipif(BACKEND != "postgresql", reason="PostgreSQL connection pool")
async def test_a_busy_pool_checks_out_connections_without_pinging(
        database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    pings: list[object] = []
    dialect = database.engine.sync_engine.dialect
    monkeypatch.setattr(type(dialect), "do_ping", lambda self, connection: pings.append(connection) or True)
    for _ in range(5):
        async with database.transaction() as session:
            await session.execute(text("SELECT 1"))
    assert pings == []
    monkeypatch.setattr("cityhealth.db.engine.PING_AFTER_IDLE_S", 0.0)
    async with database.transaction() as session:
        await session.execute(text("SELECT 1"))
    assert len(pings) == 1
