"""Keeping release-time load off the write path: the availability search cache and the admission gate.

Availability is a hint (lessons.md: rules are enforced in the booking transaction, search is only a
hint), so the search is answered from a per-process snapshot at most `ttl_s` old: however many residents
refresh the page at release time, the database sees one query per filter per second.

The gate admits to the booking write path at most as many attempts of a session as it has slots left
(the rest are answered "sold out" straight away, without a transaction), and lets only a few of those
into the database at once: they would queue on the session's row lock anyway, and queuing here keeps the
connection pool free for every other session's bookings.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import URL

from cityhealth.db.engine import Database
from cityhealth.errors import Conflict


def sold_out(session_id: int) -> Conflict:
    return Conflict(f"session {session_id} has no slot left", code="sold_out", field="session_id",
                    value=session_id, rule="booking.sold_out")


def quota_exhausted(session_id: int, channel: str) -> Conflict:
    return Conflict(f"the {channel} channel has used up its quota of session {session_id}",
                    code="quota_exhausted", field="channel", value=channel, rule="booking.channel_quota")


@dataclass
class _Pool:
    remaining: int
    semaphore: asyncio.Semaphore
    claimed: int = 0


@dataclass
class SlotGate:
    concurrency: int = 4
    _pools: dict[tuple[int, str], _Pool] = field(default_factory=dict)

    def observe(self, session_id: int, channel: str, remaining: int) -> None:
        pool = self._pools.get((session_id, channel))
        if pool is not None:
            pool.remaining = remaining

    @asynccontextmanager
    async def admit(self, session_id: int, channel: str, remaining: int,
                    refusal: Callable[[], Conflict]) -> AsyncIterator[None]:
        """Enter the write path for a slot of `session_id`, or raise `refusal()` when all are claimed."""
        key = (session_id, channel)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = _Pool(remaining, asyncio.Semaphore(self.concurrency))
        else:
            pool.remaining = remaining  # a fresh read; local attempts still running are in `claimed`
        if pool.claimed >= pool.remaining:
            raise refusal()
        pool.claimed += 1
        try:
            async with pool.semaphore:
                if pool.remaining <= 0:
                    raise refusal()
                yield
        finally:
            pool.claimed -= 1
            if pool.claimed == 0:
                self._pools.pop(key, None)


@dataclass
class _Entry:
    loaded_at: float
    rows: list[dict[str, Any]]


@dataclass
class AvailabilityCache:
    ttl_s: float = 1.0
    _entries: dict[tuple[Any, ...], _Entry] = field(default_factory=dict)
    _locks: dict[tuple[Any, ...], asyncio.Lock] = field(default_factory=dict)

    async def get(self, key: tuple[Any, ...],
                  load: Callable[[], Awaitable[list[dict[str, Any]]]]) -> list[dict[str, Any]]:
        entry = self._entries.get(key)
        if entry is not None and time.monotonic() - entry.loaded_at < self.ttl_s:
            return entry.rows
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # one load per key at a time; the others take its result
            entry = self._entries.get(key)
            if entry is not None and time.monotonic() - entry.loaded_at < self.ttl_s:
                return entry.rows
            rows = await load()
            if len(self._entries) > 4096:  # bound the memory a scan of many filters could take
                self._entries.clear()
            self._entries[key] = _Entry(time.monotonic(), rows)
            return rows

    def invalidate(self) -> None:
        """Forget every snapshot: this process has just changed what they show."""
        self._entries.clear()


class ReadPool:
    """PostgreSQL only: a few connections of the booking path's own for its one read per attempt.

    Every booking attempt starts with a read (idempotency key, app, session); at release time most of them
    end there ("sold out"). On their own pool these reads never wait behind the write transactions for a
    connection, and asyncpg without the ORM layer costs a fifth of the CPU per read.
    """

    def __init__(self, url: URL, size: int = 4) -> None:
        self._url = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._size = size
        self._pool: Any = None
        self._lock = asyncio.Lock()

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        pool = self._pool or await self._open()
        async with pool.acquire() as connection:
            return await connection.fetchrow(sql, *args)

    async def _open(self) -> Any:
        async with self._lock:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(self._url, min_size=1, max_size=self._size)
            return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


@dataclass
class BookingRuntime:
    """The per-process state of the booking room (one per app)."""

    gate: SlotGate = field(default_factory=SlotGate)
    availability: AvailabilityCache = field(default_factory=AvailabilityCache)
    read_pool: ReadPool | None = None

    def reads(self, database: Database) -> ReadPool | None:
        """The read pool for this database, or None on SQLite (whose reads go through the engine)."""
        if database.is_sqlite:
            return None
        if self.read_pool is None:
            self.read_pool = ReadPool(database.url)
        return self.read_pool

    async def close(self) -> None:
        if self.read_pool is not None:
            await self.read_pool.close()
