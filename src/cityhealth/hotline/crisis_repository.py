"""The crisis follow-ups' queries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.hotline.models import Call, CrisisFollowUp

_FOLLOW_UPS: Table = CrisisFollowUp.__table__  # type: ignore[assignment]


async def open_follow_ups(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Follow-ups for calls that have none yet (a call has at most one)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert(_FOLLOW_UPS) if dialect == "postgresql" else sqlite.insert(_FOLLOW_UPS)
    await session.execute(insert.on_conflict_do_nothing(index_elements=["call_id"]), rows)


async def follow_up_of_call(session: AsyncSession, call_id: int) -> CrisisFollowUp | None:
    statement = select(CrisisFollowUp).where(CrisisFollowUp.call_id == call_id).with_for_update()
    return (await session.scalars(statement)).one_or_none()


async def follow_up(session: AsyncSession, follow_up_id: int, *,
                    lock: bool = False) -> tuple[CrisisFollowUp, Call] | None:
    statement = (select(CrisisFollowUp, Call).join(Call, Call.id == CrisisFollowUp.call_id)
                 .where(CrisisFollowUp.id == follow_up_id))
    if lock:
        statement = statement.with_for_update(of=_FOLLOW_UPS)
    row = (await session.execute(statement)).one_or_none()
    return None if row is None else (row[0], row[1])


async def follow_ups(session: AsyncSession, statuses: Sequence[str], limit: int) -> list[tuple[CrisisFollowUp, Call]]:
    """Follow-ups in the given statuses, the earliest due first."""
    statement = (select(CrisisFollowUp, Call).join(Call, Call.id == CrisisFollowUp.call_id)
                 .where(CrisisFollowUp.status.in_(statuses))
                 .order_by(CrisisFollowUp.due_at, CrisisFollowUp.id).limit(limit))
    return [(row[0], row[1]) for row in await session.execute(statement)]


async def escalate_overdue(session: AsyncSession, now: datetime, limit: int) -> list[int]:
    """Mark open follow-ups past their deadline and not yet escalated as escalated; their ids."""
    due = (select(CrisisFollowUp.id)
           .where(CrisisFollowUp.status == "open", CrisisFollowUp.due_at < now,
                  CrisisFollowUp.escalated_at.is_(None))
           .order_by(CrisisFollowUp.due_at).limit(limit).with_for_update(skip_locked=True))
    ids = list((await session.scalars(due)).all())
    if ids:
        await session.execute(update(CrisisFollowUp).where(CrisisFollowUp.id.in_(ids))
                              .values(escalated_at=now, updated_at=now))
    return ids
