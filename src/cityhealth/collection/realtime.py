"""Real-time batches of one unit written together: group commit under the unit's write lock.

A unit's writes are serialised (the unit lock of `stored_records.lock_organization`, and on SQLite the database
write lock), and its counter rows are shared by every batch of the day, so two batches of one unit never
run in parallel anyway. What a busy sender can be spared is the queue: with one transaction per batch, each
waiting for the lock, a hospital sending 200 batches a second spends more time queueing than writing, and
the tail latency grows without bound once the commits fall behind.

So batches of the same unit that arrive while one is being written wait here, in the process, and the next
transaction takes all of them (up to MAX_GROUP_RECORDS records): one lock acquisition, one audit-chain
append and one commit for the group. Each batch is still decided on its own, in arrival order, by
`ingest()` (a later batch sees an earlier one's records), and each request gets its own answer. Each batch
runs in its request's own context (request id, client address), so its audit event and its statements
are attributed to that request.

A batch that fails inside a group rolls the whole group back, and every batch of the group is then written
alone, in its own transaction: a failure answers only the batch that caused it, and nothing is half-stored.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.collection.repository.organizations import Sender
from cityhealth.db.engine import Database

# A group stops growing past this many records (a real-time batch holds at most 1,000).
MAX_GROUP_RECORDS = 5_000
# How long a sending unit's registry row is trusted without reading it again: a unit deactivated in the
# registry stops uploading within this time (the same bound as a revoked client's tokens).
SENDER_CACHE_S = 30

Work = Callable[[AsyncSession], Coroutine[Any, Any, Any]]


@dataclass
class _Waiting:
    work: Work
    records: int
    context: contextvars.Context
    done: asyncio.Future[Any]


@dataclass
class _Unit:
    waiting: list[_Waiting] = field(default_factory=list)
    writing: bool = False


class GroupFailed(Exception):
    """Internal: a batch of a group raised; the group is rolled back and its batches run alone."""


@dataclass
class BatchGroups:
    """Per process: the units with batches being written, and the batches waiting for them."""

    database: Database
    units: dict[int, _Unit] = field(default_factory=dict)
    groups_written: int = 0  # for tests and metrics: transactions committed
    batches_written: int = 0
    senders: dict[int, tuple[Sender, datetime]] = field(default_factory=dict)

    def known_sender(self, organization_id: int | None, now: datetime) -> Sender | None:
        """The unit's registry row as read less than SENDER_CACHE_S ago, if it was."""
        entry = None if organization_id is None else self.senders.get(organization_id)
        if entry is None or not 0 <= (now - entry[1]).total_seconds() < SENDER_CACHE_S:
            return None
        return entry[0]

    def remember_sender(self, sender: Sender, now: datetime) -> None:
        self.senders[sender.id] = (sender, now)

    async def write(self, organization_id: int, records: int, work: Work) -> Any:
        """Run `work(session)` in a transaction shared with the unit's other waiting batches; its result."""
        loop = asyncio.get_running_loop()
        waiting = _Waiting(work, records, contextvars.copy_context(), loop.create_future())
        unit = self.units.setdefault(organization_id, _Unit())
        unit.waiting.append(waiting)
        if not unit.writing:
            unit.writing = True
            asyncio.create_task(self._drain(organization_id, unit))  # noqa: RUF006 - it ends when the queue is empty
        return await waiting.done

    async def _drain(self, organization_id: int, unit: _Unit) -> None:
        try:
            while unit.waiting:
                group = _take(unit.waiting)
                try:
                    await self._write_group(group)
                except Exception:
                    for item in group:
                        await self._write_alone(item)
        finally:
            unit.writing = False
            if not unit.waiting:
                self.units.pop(organization_id, None)
            else:  # arrived between the last take and now
                unit.writing = True
                asyncio.create_task(self._drain(organization_id, unit))  # noqa: RUF006

    async def _write_group(self, group: list[_Waiting]) -> None:
        results: list[Any] = []
        async with self.database.transaction() as session:
            for item in group:
                task: asyncio.Task[Any] = asyncio.create_task(item.work(session), context=item.context)
                try:
                    results.append(await task)
                except Exception as exc:
                    raise GroupFailed from exc
        self.groups_written += 1
        self.batches_written += len(group)
        for item, result in zip(group, results, strict=True):
            if not item.done.done():
                item.done.set_result(result)

    async def _write_alone(self, item: _Waiting) -> None:
        try:
            async with self.database.transaction() as session:
                result: Any = await asyncio.create_task(item.work(session), context=item.context)
        except BaseException as exc:
            if not item.done.done():
                item.done.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        self.groups_written += 1
        self.batches_written += 1
        if not item.done.done():
            item.done.set_result(result)


def _take(waiting: list[_Waiting]) -> list[_Waiting]:
    """The oldest batches up to MAX_GROUP_RECORDS records (at least one), removed from the queue."""
    total, count = 0, 0
    for item in waiting:
        if count and total + item.records > MAX_GROUP_RECORDS:
            break
        total += item.records
        count += 1
    group = waiting[:count]
    del waiting[:count]
    return group
