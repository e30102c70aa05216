"""Group commit's machinery, per process: a queue per key (a session) and one leader at a time deciding
what queued meanwhile, together. What a decision is lives in group_commit.py; nothing here knows."""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Requeue(Exception):
    """An item's outcome for "not decided by this batch: decide me in the next, at the head of the queue"."""


@dataclass(eq=False)
class _Queued(Generic[T, R]):
    item: T
    future: asyncio.Future[R]


class Batch(Generic[T, R]):
    """The items one decision covers. The decider takes them from the queue when it is ready for them
    (after waiting for its turn, say), so that whatever queued during the wait joins the batch."""

    def __init__(self, queue: deque[_Queued[T, R]], max_items: int) -> None:
        self._queue = queue
        self._max_items = max_items
        self.entries: list[_Queued[T, R]] | None = None

    def take(self) -> list[T]:
        """Take up to `max_items` queued items, oldest first (once; later calls return the same)."""
        if self.entries is None:
            self.entries = []
            while self._queue and len(self.entries) < self._max_items:
                queued = self._queue.popleft()
                if not queued.future.done():  # its request was cancelled meanwhile
                    self.entries.append(queued)
        return [queued.item for queued in self.entries]


Decide = Callable[[Batch[T, R]], Awaitable[list[R | BaseException]]]


class GroupCommitter(Generic[T, R]):
    """A key's queued items are decided in batches, by one leader task at a time.

    The first item queued for a key starts a leader; while its batch is being decided, new items queue,
    and the next batch takes up to `max_batch` of them at once. The batch grows with the load, so the
    cost of a decision is shared by more items the more there are. The leader is a task of its own, in
    an empty context: it belongs to no request, and no request's cancellation stops it.
    """

    def __init__(self, max_batch: int = 128) -> None:
        self.max_batch = max_batch
        self._queues: dict[Hashable, deque[_Queued[T, R]]] = {}
        self._leaders: dict[Hashable, asyncio.Task[None]] = {}

    async def submit(self, key: Hashable, item: T, decide: Decide[T, R]) -> R:
        """Queue `item` and wait for its outcome. `decide(batch)` takes the batch's items and returns one
        result or exception per item taken (`Requeue`: put back at the head of the queue)."""
        queued: _Queued[T, R] = _Queued(item, asyncio.get_running_loop().create_future())
        self._queues.setdefault(key, deque()).append(queued)
        if key not in self._leaders:
            self._leaders[key] = asyncio.create_task(self._lead(key, decide), context=contextvars.Context())
        return await queued.future

    def queued(self) -> int:
        """How many items wait in this process's queues (not those in a batch being decided)."""
        return sum(len(queue) for queue in self._queues.values())

    def refuse_queued(self, key: Hashable, refusal: Callable[[T], BaseException | None]) -> int:
        """Answer at once the queued items that `refusal` has an answer for, asked in queue order."""
        queue = self._queues.get(key)
        if not queue:
            return 0
        kept: list[_Queued[T, R]] = []
        for queued in queue:
            error = None if queued.future.done() else refusal(queued.item)
            if error is None:
                kept.append(queued)
            else:
                queued.future.set_exception(error)
        refused = len(queue) - len(kept)
        queue.clear()
        queue.extend(kept)
        return refused

    async def _lead(self, key: Hashable, decide: Decide[T, R]) -> None:
        queue = self._queues[key]
        batch: Batch[T, R] | None = None
        try:
            await asyncio.sleep(0)  # the items ready in this turn of the loop join the first batch
            while queue:
                batch = Batch(queue, self.max_batch)
                try:
                    outcomes = await decide(batch)
                except Exception as error:  # a bug, not a refusal: every item of the batch answers it
                    outcomes = [error] * len(batch.take())
                batch.take()
                self._settle(queue, batch.entries or [], outcomes)
                batch = None
        finally:
            # Normally nothing is left here; after a cancellation (shutdown) nobody is left to decide.
            for queued in [*((batch.entries or []) if batch else []), *queue]:
                queued.future.cancel()
            queue.clear()
            del self._leaders[key]
            del self._queues[key]

    @staticmethod
    def _settle(queue: deque[_Queued[T, R]], entries: list[_Queued[T, R]],
                outcomes: list[R | BaseException]) -> None:
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

    async def close(self) -> None:
        """Let the batches under way finish (at shutdown)."""
        while self._leaders:
            await asyncio.gather(*self._leaders.values(), return_exceptions=True)
