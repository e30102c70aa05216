"""Real-time batches of one unit written together: group commit under the unit's write lock.

A unit's writes are serialised (the unit lock of `stored_records.lock_organization`, and on SQLite the database
write lock), and its counter rows are shared by every batch of the day, so two batches of one unit never
run in parallel anyway. What a busy sender can be spared is the queue: with one transaction per batch, each
waiting for the lock, a hospital sending 200 batches a second spends more time queueing than writing, and
the tail latency grows without bound once the commits fall behind.

So batches of the same unit that arrive while one is being written wait in the process (the platform's
group commit, `db.group_commit`, keyed by the unit), and the next transaction takes all of them (up to
MAX_GROUP_RECORDS records): one lock acquisition, one audit-chain append and one commit for the group. Each
batch is still decided on its own, in arrival order, by `ingest()` (a later batch sees an earlier one's
records), and each request gets its own answer. Each batch runs in its request's own context (request id,
client address), so its audit event and its statements are attributed to that request.

A batch that fails inside a group rolls the whole group back, and the group commit then writes every batch
of the group alone, in its own transaction: a failure answers only the batch that caused it, and nothing is
half-stored.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.collection.repository.organizations import Sender
from cityhealth.db.engine import Database
from cityhealth.db.group_commit import Batch, GroupCommit, group_transaction
from cityhealth.security.audit import write_pending_now

# A group stops growing past this many records (a real-time batch holds at most 1,000).
MAX_GROUP_RECORDS = 5_000
# How long a sending unit's registry row is trusted without reading it again: a unit deactivated in the
# registry stops uploading within this time (the same bound as a revoked client's tokens).
SENDER_CACHE_S = 30

Work = Callable[[AsyncSession], Coroutine[Any, Any, Any]]


@dataclass(frozen=True)
class _Upload:
    work: Work
    context: contextvars.Context  # the request's: its audit event carries the request's id


@dataclass
class BatchGroups:
    """Per process: the real-time batches waiting for their unit, written a group per transaction."""

    database: Database
    commit: GroupCommit[_Upload, Any] = field(
        default_factory=lambda: GroupCommit(max_items=1_000, max_weight=MAX_GROUP_RECORDS))
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
        upload = _Upload(work, contextvars.copy_context())
        return await self.commit.submit(organization_id, upload, self._write_group, weight=records)

    async def _write_group(self, batch: Batch[_Upload, Any]) -> Sequence[Any]:
        # The group commit's leader owns this transaction: it belongs to no request.
        uploads = batch.take()
        results: list[Any] = []
        async with group_transaction(self.database, begin=True) as session:
            for upload in uploads:
                results.append(await asyncio.create_task(upload.work(session), context=upload.context))
            # The group's audit events, on the connection every batch's statements used (not the adapter's).
            await write_pending_now(session)
        self.groups_written += 1
        self.batches_written += len(uploads)
        return results

    async def close(self) -> None:
        """Write what is queued, then stop (at shutdown)."""
        await self.commit.close()

