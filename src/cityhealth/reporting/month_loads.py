"""Months being loaded: a bulk source (the demo's simulation) says how far it is, readers refuse partial months.

The loader writes the record in transactions of its own, step by step; the pages read it to show a progress
banner, and a bulletin of a month whose load has not completed is never presented as the month's bulletin.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.errors import Conflict, ValidationFailed
from cityhealth.reporting import repository
from cityhealth.reporting.models import MonthLoad

FAILURE_CHARS = 500


@dataclass(frozen=True)
class MonthLoadRead:
    month: str
    source: str
    done: int
    total: int
    started_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    failure: str | None

    @property
    def is_complete(self) -> bool:
        return self.completed_at is not None

    @property
    def percent(self) -> int:
        """Whole percent done, rounded down: 100 only once the load has completed."""
        if self.is_complete:
            return 100
        return min(99, self.done * 100 // self.total) if self.total else 0


def _read(row: MonthLoad) -> MonthLoadRead:
    return MonthLoadRead(row.month, row.source, row.done, row.total, row.started_at, row.updated_at,
                         row.completed_at, row.failure)


def _check_steps(done: int, total: int) -> None:
    if total < 1:
        raise ValidationFailed(f"a load has at least one step, not {total}", field="total", value=total,
                               rule="month_load.total")
    if not 0 <= done <= total:
        raise ValidationFailed(f"done must be within 0..{total}, not {done}", field="done", value=done,
                               rule="month_load.done")


async def start(session: AsyncSession, clock: Clock, month: str, source: str, total: int) -> MonthLoadRead:
    """Record that `month` is being loaded from `source`; a month already completed is refused."""
    _check_steps(0, total)
    now = clock.now()
    row = await session.get(MonthLoad, month, with_for_update=True)
    if row is not None and row.completed_at is not None:
        raise Conflict(f"{month} was loaded completely at {row.completed_at:%Y-%m-%d %H:%M} UTC by {row.source}",
                       code="month_already_loaded", field="month", value=month)
    if row is None:
        row = MonthLoad(month=month, source=source, done=0, total=total, started_at=now, updated_at=now,
                        completed_at=None, failure=None)
        session.add(row)
    else:  # a load that stopped before: it starts again from the beginning
        row.source, row.done, row.total, row.started_at, row.updated_at, row.failure = source, 0, total, now, now, None
    await session.flush()
    return _read(row)


async def _open(session: AsyncSession, month: str) -> MonthLoad:
    row = await session.get(MonthLoad, month, with_for_update=True)
    if row is None:
        raise ValidationFailed(f"no load of {month} was started", field="month", value=month,
                               rule="month_load.started")
    if row.completed_at is not None:
        raise Conflict(f"the load of {month} has already completed", code="month_already_loaded", field="month",
                       value=month)
    return row


async def advance(session: AsyncSession, clock: Clock, month: str, done: int) -> MonthLoadRead:
    """Record `done` steps of the month's load (a retry with the same count changes nothing)."""
    row = await _open(session, month)
    _check_steps(done, row.total)
    row.done, row.updated_at = max(row.done, done), clock.now()
    await session.flush()
    return _read(row)


async def complete(session: AsyncSession, clock: Clock, month: str) -> MonthLoadRead:
    """Record that the month's data is all there: from now on its bulletin is final."""
    row = await session.get(MonthLoad, month, with_for_update=True)
    if row is None:
        raise ValidationFailed(f"no load of {month} was started", field="month", value=month,
                               rule="month_load.started")
    if row.completed_at is None:  # completing twice is harmless: a retried step
        now = clock.now()
        row.done, row.updated_at, row.completed_at, row.failure = row.total, now, now, None
        await session.flush()
    return _read(row)


async def fail(session: AsyncSession, clock: Clock, month: str, reason: str) -> MonthLoadRead:
    """Record why the month's load stopped; the month stays partial until a new load completes it."""
    row = await _open(session, month)
    row.failure, row.updated_at = reason[:FAILURE_CHARS], clock.now()
    await session.flush()
    return _read(row)


async def get(session: AsyncSession, month: str) -> MonthLoadRead | None:
    row = await session.get(MonthLoad, month)
    return None if row is None else _read(row)


async def unfinished(session: AsyncSession) -> list[MonthLoadRead]:
    """Loads not completed, oldest month first: what the pages' progress banner shows."""
    return [_read(row) for row in await repository.unfinished_loads(session)]


def refuse_partial(load: MonthLoadRead | None) -> None:
    """Raise Conflict when the month is still being loaded (or its load stopped): its figures are partial."""
    if load is None or load.is_complete:
        return
    state = f"stopped at {load.percent} %: {load.failure}" if load.failure else f"{load.percent} % done"
    raise Conflict(f"{load.month} is still being loaded by {load.source} ({state}); its bulletin is not final",
                   code="month_in_progress", field="month", value=load.month)
