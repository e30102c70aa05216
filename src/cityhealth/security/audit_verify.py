"""Checking and exporting the audit trail: `cityhealth audit verify` and `cityhealth audit export`.

Verification recomputes every event's hash from its content and the previous event's hash, in id order.
It names the first bad event and why: *edited* (its content no longer matches its hash), *deleted* (the
chain skips over missing ids), *reordered* (an event links to one stored elsewhere). Removing the newest
events leaves a shorter chain that is still consistent, so that case needs an anchor: the id and hash of
a head seen earlier (each clean run prints it, and the CLI keeps the last one in var/audit/anchor.json).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.db.engine import Database
from cityhealth.security import repository
from cityhealth.security.audit import GENESIS, PendingEvent, event_hash, hashed_fields

BATCH = 5000


@dataclass(frozen=True)
class Problem:
    event_id: int
    kind: str  # edited, deleted, reordered
    reason: str


@dataclass(frozen=True)
class Verification:
    checked: int
    head_id: int | None
    head_hash: str | None
    problem: Problem | None

    @property
    def ok(self) -> bool:
        return self.problem is None


# How SQLite stores a DateTime. Python parses many spellings of one instant ("2022-06-15T01:30", "…15X01…"):
# a stored text in any other spelling has been edited even if it still names the same instant.
_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"


def _as_utc(value: object) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(moment, datetime):
        raise TypeError("occurred_at is not a time")
    if isinstance(value, str) and moment.strftime(_SQLITE_DATETIME) != value:
        raise ValueError("occurred_at is not in its stored form")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _recomputed(row: Any) -> str | None:
    """The hash the row's content gives, or None when the content is no longer even readable."""
    try:
        values = {name: getattr(row, name) for name in PendingEvent.__dataclass_fields__}
        values["occurred_at"] = _as_utc(values["occurred_at"])
        return event_hash(str(row.prev_hash), hashed_fields(SimpleNamespace(**values)))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


async def _rows(session: AsyncSession, batch: int) -> AsyncIterator[Any]:
    last = None
    while True:
        rows = await repository.raw_audit_events(session, after_id=last, limit=batch)
        if not rows:
            return
        for row in rows:
            yield row
        last = rows[-1].id


async def _broken_link(session: AsyncSession, row: Any, previous_id: int | None) -> Problem:
    """Why `row` does not link to the event stored before it."""
    found = await repository.audit_event_id_by_hash(session, str(row.prev_hash))
    if found is not None:
        where = "after" if found > row.id else "before"
        return Problem(row.id, "reordered", f"it follows event {found} in the chain, which is stored {where} it")
    if row.prev_hash == GENESIS:
        return Problem(row.id, "reordered", "it is the first event of the chain but not stored first")
    if previous_id is None:
        return Problem(row.id, "deleted", "the events before it are missing")
    if row.id - previous_id > 1:
        return Problem(row.id, "deleted", f"the events between {previous_id} and {row.id} are missing")
    return Problem(previous_id, "edited", f"its hash was rewritten (event {row.id} no longer links to it), or "
                                          "an event after it was deleted and the ids renumbered")


async def verify_chain(database: Database, *, anchor: tuple[int, str] | None = None, batch: int = BATCH,
                       progress: Callable[[int], None] | None = None) -> Verification:
    """Walk the chain in id order; stop at the first bad event."""
    checked, expected, previous_id, head_hash = 0, GENESIS, None, None
    anchor_seen = False
    async with database.transaction() as session:
        async for row in _rows(session, batch):
            problem = None
            if _recomputed(row) != row.hash:
                problem = Problem(row.id, "edited", "its content no longer matches its hash")
            elif row.prev_hash != expected:
                problem = await _broken_link(session, row, previous_id)
            elif anchor is not None and row.id == anchor[0]:
                anchor_seen = True
                if row.hash != anchor[1]:
                    problem = Problem(row.id, "edited", "its hash differs from the anchor recorded earlier")
            if problem is not None:
                return Verification(checked, previous_id, expected, problem)
            checked += 1
            expected, previous_id, head_hash = row.hash, row.id, row.hash
            if progress is not None:
                progress(1)
    if anchor is not None and not anchor_seen:
        return Verification(checked, previous_id, head_hash, Problem(
            anchor[0], "deleted", "the anchored event is gone: events up to and including it were removed"))
    return Verification(checked, previous_id, head_hash, None)


async def count_events(database: Database) -> int:
    async with database.transaction() as session:
        return await repository.count_audit_events(session)


async def export_events(database: Database, start: datetime, end: datetime, write: Callable[[str], None],
                        *, batch: int = BATCH) -> int:
    """Write the events with start <= occurred_at < end as NDJSON, in chain order, hashes included."""
    written, last = 0, 0
    async with database.transaction() as session:
        while True:
            events = await repository.audit_events_between(session, start, end, after_id=last, limit=batch)
            if not events:
                return written
            for event in events:
                line = {"id": event.id, **hashed_fields(event), "prev_hash": event.prev_hash, "hash": event.hash}
                write(json.dumps(line, ensure_ascii=False))
                written += 1
            last = events[-1].id
