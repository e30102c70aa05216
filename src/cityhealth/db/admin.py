"""Databases on a PostgreSQL server, made and dropped: the test suite's, the benchmarks' and the demo's scratch.

Only for a server the caller administers (tests, benchmarks); the platform itself never creates databases.
`url` is any URL of the server (plain or with our driver); the statements run in its maintenance database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from cityhealth.db.engine import async_url


def database_on(url: str, name: str) -> str:
    """The plain URL of database `name` on the server of `url`."""
    return async_url(url).set(database=name, drivername="postgresql").render_as_string(hide_password=False)


def _quoted(name: str) -> str:
    if not name or '"' in name or "\x00" in name:
        raise ValueError(f"not a usable database name: {name!r}")
    return f'"{name}"'


async def _connect(url: str) -> Any:
    import asyncpg  # type: ignore[import-untyped]

    parsed = async_url(url)
    return await asyncpg.connect(host=parsed.host or "127.0.0.1", port=parsed.port or 5432,
                                 user=parsed.username or "postgres", password=parsed.password,
                                 database=parsed.database or "postgres")


async def execute_on_server(url: str, sql: str) -> None:
    """Run one statement in the database `url` names (the server's maintenance database, usually)."""
    connection = await _connect(url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def fetch_on_server(url: str, sql: str, *args: object) -> list[tuple[Any, ...]]:
    """The rows of one query in the database `url` names."""
    connection = await _connect(url)
    try:
        return [tuple(row) for row in await connection.fetch(sql, *args)]
    finally:
        await connection.close()


async def backend_pids(url: str, name: str) -> list[int]:
    """The server processes serving database `name` (to measure its CPU from /proc on the same host)."""
    rows = await fetch_on_server(url, "SELECT pid FROM pg_stat_activity WHERE datname = $1", name)
    return [int(row[0]) for row in rows]


async def create_database(url: str, name: str, *, template: str | None = None) -> str:
    """Create database `name` (a copy of `template` when given); its plain URL."""
    copy = f" TEMPLATE {_quoted(template)}" if template else ""
    await execute_on_server(url, f"CREATE DATABASE {_quoted(name)}{copy}")
    return database_on(url, name)


async def drop_database(url: str, name: str) -> None:
    """Drop database `name` if it exists, ending its connections."""
    await execute_on_server(url, f"DROP DATABASE IF EXISTS {_quoted(name)} WITH (FORCE)")


@asynccontextmanager
async def scratch_database(url: str, name: str, *, template: str | None = None,
                           keep: bool = False) -> AsyncIterator[str]:
    """A database made for the block and dropped after it (unless `keep`); yields its plain URL."""
    made = await create_database(url, name, template=template)
    try:
        yield made
    finally:
        if not keep:
            await drop_database(url, name)
