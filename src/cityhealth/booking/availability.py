"""Keeping release-time load off the write path: the availability search cache and the admission gate.

Availability is a hint (every rule is enforced in the booking transaction; search only guides the
resident), so the search is answered from a per-process snapshot at most `ttl_s` old: however many residents
refresh the page at release time, the database sees one query per filter per second.

The gate admits to the booking write path at most as many attempts of a session as it has slots left,
counting those already queued or being decided. When none is left the rest are answered "sold out"
straight away, without a transaction. When slots are left but every one is claimed, an attempt waits for a
claim to be decided instead: a claimed attempt may still lose (the resident's daily cap, a ban, an unknown
ID number), and its slot must then go to the next attempt, not stay free behind a "sold out" already sent.
How many slots are left is the booking rule's answer (`slots.SessionSlots.left`); the gate only counts.
The admitted ones are decided by the platform's group commit (`db.group_commit`): one leader per session
and process takes the attempts queued meanwhile and decides them in a single transaction
(booking/group_commit.py), so they do not queue on the session's row lock one by one.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from cityhealth.booking import group_repository, repository
from cityhealth.db.engine import Database
from cityhealth.db.group_commit import GroupCommit
from cityhealth.errors import Conflict


@dataclass
class _Pool:
    remaining: int  # slots left for the channel, as last seen (a read, or a committed batch)
    seen_at: float  # monotonic time of that evidence: an older read does not overwrite a newer outcome
    claimed: int = 0  # attempts admitted and not yet decided (queued or in a batch)
    # Attempts beyond the claims, in arrival order: each is woken once, when it is admitted (True) or when no
    # slot is left (False) — not every one of them at every change, hundreds at a release.
    waiters: deque[asyncio.Future[bool]] = field(default_factory=deque)

    def settle(self) -> None:
        """Admit the waiters the count now allows, first come first; refuse them all once none is left."""
        waiters = self.waiters
        while waiters:
            waiter = waiters[0]
            if waiter.done():  # its attempt was cancelled while it waited
                waiters.popleft()
            elif self.remaining <= 0:
                waiters.popleft().set_result(False)
            elif self.claimed < self.remaining:
                self.claimed += 1
                waiters.popleft().set_result(True)
            else:
                return


@dataclass(eq=False)
class Claim:
    """One admitted attempt's place in its pool, given back once, as soon as its outcome is known."""

    pool: _Pool
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.pool.claimed -= 1
            self.pool.settle()


@dataclass
class SlotGate:
    """Per process: at most as many attempts of a session and channel in the write path as it has slots."""

    max_pools: int = 4096
    _pools: dict[tuple[int, str], _Pool] = field(default_factory=dict)

    def observe(self, session_id: int, channel: str, remaining: int, seen_at: float | None = None) -> None:
        """Record the slots left for `channel` as of `seen_at` (default: now, after a commit)."""
        pool = self._pools.get((session_id, channel))
        moment = time.monotonic() if seen_at is None else seen_at
        if pool is not None and moment >= pool.seen_at:
            changed = remaining != pool.remaining
            pool.remaining, pool.seen_at = remaining, moment
            if changed:
                pool.settle()

    async def admit(self, session_id: int, channel: str, remaining: int, refusal: Callable[[], Conflict], *,
                    read_at: float) -> Claim:
        """Enter the write path for a slot of `session_id` (the caller releases the claim once the attempt
        is decided), or raise `refusal()` when none is left.

        `remaining` is what a read begun at `read_at` (monotonic) found; attempts admitted and not yet
        decided count against it: beyond them an attempt waits, behind those that came before it, until a
        decision frees a slot for it (admitted) or leaves none (refused).
        """
        key = (session_id, channel)
        pool = self._pools.get(key)
        if pool is None:
            if len(self._pools) >= self.max_pools:  # forget idle pools; a busy one keeps its claims and waiters
                self._pools = {k: p for k, p in self._pools.items() if p.claimed or p.waiters}
            pool = self._pools[key] = _Pool(remaining, read_at)
        else:
            self.observe(session_id, channel, remaining, read_at)
        if pool.remaining <= 0:
            raise refusal()
        if pool.claimed < pool.remaining and not pool.waiters:
            pool.claimed += 1
            return Claim(pool)
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        pool.waiters.append(waiter)
        try:
            admitted = await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.result():
                Claim(pool).release()  # admitted just as it was cancelled: the place goes to the next
            raise
        if not admitted:
            raise refusal()
        return Claim(pool)


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

    The pool is a free list, not asyncpg's pool: its connections only ever run that read in autocommit, so
    there is no session state to reset between reads, and a read's connection goes back to the list (or
    straight to the read waiting longest) without the task asyncpg's pool starts for every release.
    A connection whose read failed other than with the database's answer (lost, cancelled mid-read) is
    closed rather than reused.
    """

    def __init__(self, url: URL, size: int = 4) -> None:
        self._url = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._size = size
        self._free: list[Any] = []
        self._opened = 0  # connections open or being opened
        self._waiters: deque[asyncio.Future[Any]] = deque()
        self._closed = False

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        connection = self._free.pop() if self._free else await self._acquire()
        try:
            row = await connection.fetchrow(sql, *args)
        except asyncpg.PostgresError:
            self._release(connection)  # the database answered: the connection is sound
            raise
        except BaseException:
            self._discard(connection)
            raise
        self._release(connection)
        return row

    async def warm(self, sql: str, *args: Any) -> None:
        """Open every connection and prepare `sql` on each (asyncpg keeps it in the connection's cache)."""
        connections = [self._free.pop() if self._free else await self._acquire() for _ in range(self._size)]
        try:
            await asyncio.gather(*(connection.fetchrow(sql, *args) for connection in connections))
        finally:
            for connection in connections:
                self._release(connection)

    async def _acquire(self) -> Any:
        while True:
            if self._closed:
                raise RuntimeError("the booking read pool is closed")
            if self._free:
                return self._free.pop()
            if self._opened < self._size:
                self._opened += 1
                try:
                    return await asyncpg.connect(self._url)
                except BaseException:
                    self._opened -= 1
                    self._hand_on(None)
                    raise
            waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                connection = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():  # handed something just as it was cancelled
                    handed = waiter.result()
                    if handed is None:
                        self._hand_on(None)
                    else:
                        self._release(handed)
                raise
            if connection is not None:
                return connection
            # None: a connection was closed, so a new one may be opened: look again.

    def _release(self, connection: Any) -> None:
        if self._closed or connection.is_closed():
            self._discard(connection)
        elif not self._hand_on(connection):
            self._free.append(connection)

    def _discard(self, connection: Any) -> None:
        self._opened -= 1
        connection.terminate()
        self._hand_on(None)

    def _hand_on(self, connection: Any) -> bool:
        """Give the read waiting longest `connection`, or None for a place to open one; False if none waits."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return True
        return False

    async def close(self) -> None:
        self._closed = True
        free, self._free = self._free, []
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)  # it looks again and finds the pool closed
        self._waiters.clear()
        self._opened -= len(free)
        await asyncio.gather(*(connection.close() for connection in free), return_exceptions=True)


class Transactions(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[AsyncSession]: ...


class WriteEngine:
    """PostgreSQL only: the group commit's own connections, one batch transaction on each at a time.

    Their statements stay prepared (asyncpg caches them per connection, and these connections run nothing
    else), they never wait behind other requests for a connection, and they are not pinged before each
    batch: a connection found broken fails its batch, whose attempts are then decided one by one on the
    platform's engine.
    """

    def __init__(self, url: URL, size: int = 4) -> None:
        self.size = size
        self.engine = create_async_engine(url, pool_size=size, max_overflow=size, pool_use_lifo=True)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session, session.begin():
            yield session

    async def warm(self, prepare: Callable[[AsyncSession], Awaitable[None]]) -> None:
        """Open `size` connections and run `prepare` on each in a transaction that is rolled back."""
        async def one() -> None:
            async with self._sessions() as session:
                await prepare(session)
                await session.rollback()

        await asyncio.gather(*(one() for _ in range(self.size)))

    async def dispose(self) -> None:
        await self.engine.dispose()


@dataclass
class BookingRuntime:
    """The per-process state of the booking room (one per app)."""

    gate: SlotGate = field(default_factory=SlotGate)
    committer: GroupCommit[Any, Any] = field(default_factory=GroupCommit)
    availability: AvailabilityCache = field(default_factory=AvailabilityCache)
    read_pool: ReadPool | None = None
    write_engine: WriteEngine | None = None

    def reads(self, database: Database) -> ReadPool | None:
        """The read pool for this database, or None on SQLite (whose reads go through the engine)."""
        if database.is_sqlite:
            return None
        if self.read_pool is None:
            self.read_pool = ReadPool(database.url)
        return self.read_pool

    def writes(self, database: Database) -> Transactions:
        """Where the group commit's transactions run: its own engine, or on SQLite the database itself
        (one file, whose writers BEGIN IMMEDIATE serialises anyway)."""
        if database.is_sqlite:
            return database
        if self.write_engine is None:
            self.write_engine = WriteEngine(database.url)
        return self.write_engine

    async def warm(self, database: Database) -> None:
        """Open the booking path's connections and prepare its statements, before the first release
        rather than during it (PostgreSQL; on SQLite there is nothing to open)."""
        reads = self.reads(database)
        if reads is None:
            return
        await reads.warm(repository.PRE_CHECK_PG_SQL, *repository.pre_check_args(
            subject="", key="", app_id=None, session_id=0, now=datetime.now(UTC)))
        writes = self.writes(database)
        assert isinstance(writes, WriteEngine)  # noqa: S101 - PostgreSQL
        await writes.warm(group_repository.warm_up)

    async def close(self) -> None:
        await self.committer.close()
        if self.read_pool is not None:
            await self.read_pool.close()
        if self.write_engine is not None:
            await self.write_engine.dispose()
            self.write_engine = None


def runtime_of(state: Any) -> BookingRuntime:
    """The app's booking runtime (one per process: the gate, the group commit and the snapshot cache that
    every booking path of the app shares), made on first use; `state` is the app's `state`."""
    found: BookingRuntime | None = getattr(state, "booking_runtime", None)
    if found is None:
        found = state.booking_runtime = BookingRuntime()
    return found
