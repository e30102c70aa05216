"""The booking path's read pool (PostgreSQL): a free list of connections that run only the pre-check's read."""

from __future__ import annotations

import asyncio

import asyncpg  # type: ignore[import-untyped]
import pytest

from cityhealth.booking.availability import ReadPool
from cityhealth.db.engine import Database
from tests.conftest import BACKEND

pytestmark = pytest.mark.skipif(BACKEND != "postgresql", reason="the read pool serves PostgreSQL only")

_BACKEND_PID = "SELECT pg_backend_pid(), pg_sleep($1::float8)"


async def test_reads_beyond_the_pool_wait_their_turn_on_its_connections(database: Database) -> None:
    pool = ReadPool(database.url, size=2)
    try:
        rows = await asyncio.gather(*(pool.fetchrow(_BACKEND_PID, 0.02) for _ in range(6)))
        assert len({row[0] for row in rows}) == 2  # six reads, two connections
        assert (pool._opened, len(pool._free), len(pool._waiters)) == (2, 2, 0)
    finally:
        await pool.close()


async def test_a_database_error_keeps_the_connection_and_a_cancelled_read_closes_it(database: Database) -> None:
    pool = ReadPool(database.url, size=1)
    try:
        first = (await pool.fetchrow(_BACKEND_PID, 0))[0]
        with pytest.raises(asyncpg.PostgresError):
            await pool.fetchrow("SELECT 1 / 0")
        assert (await pool.fetchrow(_BACKEND_PID, 0))[0] == first  # the database answered: still sound
        slow = asyncio.create_task(pool.fetchrow(_BACKEND_PID, 1))
        waiting = asyncio.create_task(pool.fetchrow(_BACKEND_PID, 0))
        await asyncio.sleep(0.1)
        slow.cancel()  # cancelled mid-read: its connection is closed, and the waiting read opens another
        row = await asyncio.wait_for(waiting, 5)
        assert row[0] != first
        assert pool._opened == 1
    finally:
        await pool.close()


async def test_a_closed_pool_refuses_reads(database: Database) -> None:
    pool = ReadPool(database.url, size=1)
    await pool.fetchrow(_BACKEND_PID, 0)
    await pool.close()
    with pytest.raises(RuntimeError):
        await pool.fetchrow(_BACKEND_PID, 0)
