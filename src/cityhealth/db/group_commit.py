"""Group commit: work submitted under a key is decided in batches, one transaction per batch.

When many requests write under one lock (a booking session's row, a hospital's counters, a call queue),
one transaction each makes them queue on the lock one after another. Here they queue in the process
instead: the first item submitted under a key starts that key's leader task, which hands what has queued
to a `decide` function as one batch (up to `max_items` items and `max_weight` weight); while the batch is
being decided, new items queue and form the next batch. The batch grows with the load, so the cost of a
transaction is shared by more items the more there are. Under a steady trickle (items arriving one by one, as
lab messages do) the batches stay small; `min_interval_s` spaces a key's batches out to let more join each.

Each item gets its own answer: `decide` returns one result or exception per item it took. An item whose
outcome is `Requeue` goes back to the head of the queue for the next batch. When `decide` raises, nothing
of the batch is taken to be written (its transaction rolled back), and each item of a batch of several is
decided again alone, in a batch of one, so that a failure answers only the item that caused it.

The leader is a task of its own, in an empty context: it belongs to no request, and no request's
cancellation stops it (a waiter that is cancelled is skipped if its item was not taken yet). The leaders
are owned: `close()` lets the batches under way and queued finish, then cancels what is left, and every
item not decided is answered with `ShutDown`.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from cityhealth.db.driver import begin_in_greenlet

if TYPE_CHECKING:
    from cityhealth.db.engine import Database

T = TypeVar("T")
R = TypeVar("R")


class Requeue(Exception):
    """An item's outcome for "not decided by this batch: decide it in the next, at the head of the queue"."""


class ShutDown(RuntimeError):
    """The group commit was closed before it decided the item."""


@dataclass(eq=False)
class _Queued(Generic[T, R]):
    item: T
    weight: int
    future: asyncio.Future[R]


class Batch(Generic[T, R]):
    """The items one decision covers. The decider takes them when it is ready for them (after waiting for a
    lock, say), so that whatever queued during the wait joins the batch."""

    def __init__(self, queue: deque[_Queued[T, R]], max_items: int, max_weight: int | None) -> None:
        self._queue = queue
        self._max_items = max_items
        self._max_weight = max_weight
        self.entries: list[_Queued[T, R]] | None = None

    @classmethod
    def of(cls, entries: list[_Queued[T, R]]) -> Batch[T, R]:
        """A batch of items already taken."""
        batch: Batch[T, R] = cls(deque(), len(entries), None)
        batch.entries = entries
        return batch

    def take(self) -> list[T]:
        """Take the oldest queued items, up to the bounds (at least one); once: later calls return the same."""
        if self.entries is None:
            self.entries = []
            weight = 0
            while self._queue and len(self.entries) < self._max_items:
                queued = self._queue[0]
                if self._max_weight is not None and self.entries and weight + queued.weight > self._max_weight:
                    break
                self._queue.popleft()
                if not queued.future.done():  # its waiter was cancelled meanwhile
                    self.entries.append(queued)
                    weight += queued.weight
        return [queued.item for queued in self.entries]


Decide = Callable[[Batch[T, R]], Awaitable[Sequence[R | BaseException]]]


class GroupCommit(Generic[T, R]):
    """Per process: a queue and at most one leader task per key (see the module's docstring)."""

    def __init__(self, max_items: int = 128, max_weight: int | None = None, *, min_interval_s: float = 0.0) -> None:
        self.max_items = max_items
        self.max_weight = max_weight
        # A key's next batch starts no sooner than this after its last one started, unless `max_items` wait: under
        # a steady trickle of items, fewer and larger batches (a batch's fixed cost, its transaction and round
        # trips, shared by more items) for at most this much more latency. An item that finds its key idle is
        # decided at once.
        self.min_interval_s = min_interval_s
        self._queues: dict[Hashable, deque[_Queued[T, R]]] = {}
        self._leaders: dict[Hashable, asyncio.Task[None]] = {}
        self._closed = False

    async def submit(self, key: Hashable, item: T, decide: Decide[T, R], *, weight: int = 1) -> R:
        """Queue `item` under `key` and wait for its outcome (its result, or its exception raised).

        `decide(batch)` takes the batch's items and returns one outcome per item taken; the first item of a
        key's queue brings the `decide` its leader uses until the queue is empty.
        """
        if self._closed:
            raise ShutDown("the group commit is closed")
        queued: _Queued[T, R] = _Queued(item, weight, asyncio.get_running_loop().create_future())
        self._queues.setdefault(key, deque()).append(queued)
        if key not in self._leaders:
            self._leaders[key] = asyncio.create_task(self._lead(key, decide), context=contextvars.Context())
        return await queued.future

    def queued(self, key: Hashable | None = None) -> int:
        """How many items wait (under `key`, or under every key), not counting those in a batch."""
        if key is not None:
            return len(self._queues.get(key, ()))
        return sum(len(queue) for queue in self._queues.values())

    @property
    def idle(self) -> bool:
        """Nothing queued and no batch under way."""
        return not self._queues and not self._leaders

    async def _lead(self, key: Hashable, decide: Decide[T, R]) -> None:
        queue = self._queues[key]
        batch: Batch[T, R] | None = None
        clock = asyncio.get_running_loop().time
        try:
            await asyncio.sleep(0)  # the items submitted in this turn of the loop join the first batch
            started: float | None = None
            while queue:
                if started is not None and len(queue) < self.max_items:
                    pause = started + self.min_interval_s - clock()
                    if pause > 0:
                        await asyncio.sleep(pause)
                started = clock()
                batch = Batch(queue, self.max_items, self.max_weight)
                try:
                    outcomes = await decide(batch)
                except Exception as error:
                    entries = self._taken(batch)
                    if len(entries) == 1:
                        self._settle(queue, entries, [error])
                    else:  # rolled back: each item alone, so the failure answers only its own item
                        for entry in entries:
                            batch = Batch.of([entry])
                            try:
                                alone = await decide(batch)
                            except Exception as own:
                                alone = [own]
                            self._settle(queue, [entry], alone)
                else:
                    self._settle(queue, self._taken(batch), outcomes)
                batch = None
        finally:
            # Normally nothing is left here; after a cancellation (shutdown) nobody is left to decide.
            left = [*((batch.entries or []) if batch is not None else []), *queue]
            for queued in left:
                if not queued.future.done():
                    queued.future.set_exception(ShutDown("the group commit shut down before deciding this item"))
            queue.clear()
            del self._leaders[key]
            del self._queues[key]

    @staticmethod
    def _taken(batch: Batch[T, R]) -> list[_Queued[T, R]]:
        batch.take()  # a decider that failed before taking its items: they are this batch's all the same
        return batch.entries or []

    @staticmethod
    def _settle(queue: deque[_Queued[T, R]], entries: list[_Queued[T, R]],
                outcomes: Sequence[R | BaseException]) -> None:
        if len(outcomes) != len(entries):  # a decider's bug: no item may be left without an answer
            error = RuntimeError(f"the batch decided {len(outcomes)} outcomes for {len(entries)} items")
            outcomes = [error] * len(entries)
        requeued = []
        for queued, outcome in zip(entries, outcomes, strict=True):
            if isinstance(outcome, Requeue):
                requeued.append(queued)
            elif queued.future.done():
                continue
            elif isinstance(outcome, BaseException):
                queued.future.set_exception(outcome)
            else:
                queued.future.set_result(outcome)
        queue.extendleft(reversed(requeued))

    async def close(self, timeout_s: float = 10.0) -> None:
        """Refuse new items, let the leaders decide what is queued for up to `timeout_s`, then cancel them."""
        self._closed = True
        leaders = list(self._leaders.values())
        if not leaders:
            return
        _, pending = await asyncio.wait(leaders, timeout=timeout_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*leaders, return_exceptions=True)


@asynccontextmanager
async def group_transaction(database: Database, *, begin: bool = False) -> AsyncIterator[AsyncSession]:
    """Database.transaction() for a group's leader, in two steps into the ORM instead of four (each starts a
    greenlet): begin with the connection checked out (on PostgreSQL: a connection, no lock, no statement yet),
    then commit with the session closed. An error anywhere rolls back and closes, even when cancelled.

    `begin`: on PostgreSQL, BEGIN is sent in the first step too, for work that runs its statements on the
    asyncpg connection itself (db.driver.pg_driver), which then finds it without another hop into the ORM."""
    session = database.sessions()
    try:
        await session.run_sync(_begin, not database.is_sqlite, begin and not database.is_sqlite)
        yield session
        await session.run_sync(_commit_and_close)
    except BaseException:
        async with session:  # rolled back and closed as `async with` closes a session
            raise


def _begin(session: Session, connect: bool, driver: bool) -> None:
    # On SQLite the connection begins with the write lock (BEGIN IMMEDIATE): taken by the first statement,
    # once the batch is prepared.
    session.begin()
    if driver:
        begin_in_greenlet(session)
    elif connect:
        session.connection()


def _commit_and_close(session: Session) -> None:
    session.commit()
    session.close()
