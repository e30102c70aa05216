"""The async engine and the session factory, for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from cityhealth.errors import ConfigurationError

_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg"}


def async_url(url: str) -> URL:
    """Map an operator's plain URL (sqlite:///PATH, postgresql://USER@HOST:PORT/DB) to our async driver."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigurationError(f"CITYHEALTH_DATABASE_URL is not a database URL: {exc}") from exc
    backend = parsed.get_backend_name()
    driver = _DRIVERS.get(backend)
    if driver is None:
        raise ConfigurationError(
            f"CITYHEALTH_DATABASE_URL: unsupported database {backend!r}; use sqlite:/// or postgresql://"
        )
    return parsed.set(drivername=driver)


# Every SQLite connection's settings: write-ahead log, each commit synced to disk, foreign keys enforced, and a
# writer that finds the database locked waits up to 30 s for it.
SQLITE_PRAGMAS = ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=30000")


def _sqlite_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Take over transaction control from pysqlite so BEGIN is ours (see _sqlite_on_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


# A pooled PostgreSQL connection idle this long is checked before use. A busy pool's connections are not:
# asyncpg's ping is three round trips (begin, query, rollback), which pool_pre_ping paid on every checkout
# (a quarter of the statements of a booking). A connection that breaks while busy fails its transaction,
# and SQLAlchemy then invalidates the pool's older connections, so one request sees a database restart.
PING_AFTER_IDLE_S = 10.0


def _on_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info["idle_since"] = time.monotonic()


def _ping_when_idle(dialect: Dialect) -> Any:
    def on_checkout(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_S:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool then discards this connection and checks out another.
            raise DisconnectionError(f"a pooled connection idle for {time.monotonic() - idle_since:.0f} s "
                                     f"failed its ping: {exc}") from exc

    return on_checkout


# A connection's execution option: it only reads (Database.read_connection), so SQLite begins it deferred.
READ_ONLY = "cityhealth_read_only"


def _sqlite_on_begin(conn: Any) -> None:
    # IMMEDIATE takes the write lock up front: a deferred transaction that later writes can fail with
    # SQLITE_BUSY instead of waiting, which would turn contention into spurious errors. A connection that only
    # reads begins deferred: in WAL it reads its snapshot without the write lock, so it never waits for a writer
    # (one whose commit is held by a slow disk's fsync, say), as the platform's readiness check did.
    conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")


SQLITE_WRITER_PAUSE_S = 0.12


class Database:
    """One engine and its session factory; made once per process by create_app() or the CLI."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10) -> None:
        self.url = async_url(url)
        self.dialect = self.url.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo}
        if self.dialect == "sqlite":
            database = self.url.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        else:
            kwargs |= {"pool_size": pool_size, "max_overflow": pool_size}
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_on_connect)
            event.listen(self.engine.sync_engine, "begin", _sqlite_on_begin)
        else:
            pool = self.engine.sync_engine.pool
            event.listen(pool, "checkin", _on_checkin)
            event.listen(pool, "checkout", _ping_when_idle(self.engine.sync_engine.dialect))
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits when the block ends normally, rolls back on any exception."""
        async with self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read_connection(self) -> AsyncIterator[AsyncConnection]:
        """A connection that only reads: on PostgreSQL in autocommit, saving the BEGIN and ROLLBACK; on SQLite
        in a deferred transaction, which takes no write lock and so waits for no writer."""
        async with self.engine.connect() as connection:
            await connection.execution_options(**({READ_ONLY: True} if self.is_sqlite else
                                                  {"isolation_level": "AUTOCOMMIT"}))
            yield connection

    async def let_writers_in(self) -> None:
        """Between the transactions of a long pass (a bulk job's chunks, the linker's pages): on SQLite, a pause
        longer than a waiting writer's retry (its busy handler sleeps up to 100 ms between tries), without which
        back-to-back transactions leave it no moment to take the file's lock until the pass ends, and a booking
        fails on its busy timeout. Nothing on PostgreSQL, whose writers wait for rows, not for the file."""
        if self.is_sqlite:
            await asyncio.sleep(SQLITE_WRITER_PAUSE_S)

    async def ping(self) -> None:
        """Raise unless the database answers a trivial query (readiness)."""
        async with self.read_connection() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
