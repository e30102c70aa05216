"""The agent desk's queries: an agent's open calls, the caller tied to a call, the bookings made in calls,
call-back attempts, and what the supervisor's view counts."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.hotline.models import Call, CallbackAttempt, CallBooking, CallCaller

OPEN = "answered"  # an answered call that has not ended: the one an agent works on


async def open_calls(session: AsyncSession, agent: str) -> list[Call]:
    """The agent's answered, not yet ended calls, the latest answered first."""
    statement = (select(Call).where(Call.agent == agent, Call.state == OPEN)
                 .order_by(Call.answered_at.desc(), Call.id.desc()).limit(20))
    return list((await session.scalars(statement)).all())


async def callers_of(session: AsyncSession, call_ids: Collection[int]) -> dict[int, CallCaller]:
    if not call_ids:
        return {}
    rows = await session.scalars(select(CallCaller).where(CallCaller.call_id.in_(call_ids)))
    return {row.call_id: row for row in rows}


async def caller_of(session: AsyncSession, call_id: int) -> CallCaller | None:
    return await session.get(CallCaller, call_id)


async def bookings_of(session: AsyncSession, call_ids: Collection[int]) -> dict[int, list[CallBooking]]:
    found: dict[int, list[CallBooking]] = {call_id: [] for call_id in call_ids}
    if call_ids:
        statement = select(CallBooking).where(CallBooking.call_id.in_(call_ids)).order_by(CallBooking.id)
        for row in await session.scalars(statement):
            found[row.call_id].append(row)
    return found


async def link_booking(session: AsyncSession, call_id: int, booking_id: int, action: str, agent: str,
                       at: datetime) -> CallBooking:
    """The call's link to the booking for this action; a retried action finds the link it made."""
    statement = select(CallBooking).where(CallBooking.call_id == call_id, CallBooking.booking_id == booking_id,
                                          CallBooking.action == action)
    held = (await session.scalars(statement)).one_or_none()
    if held is not None:
        return held
    row = CallBooking(call_id=call_id, booking_id=booking_id, action=action, agent=agent, at=at)
    session.add(row)
    await session.flush()
    return row


async def linked_booking_ids(session: AsyncSession, booking_ids: Collection[int]) -> set[int]:
    """Of `booking_ids`, those a call booked or moved them into."""
    found: set[int] = set()
    ids = list(booking_ids)
    for start in range(0, len(ids), 1000):  # bounded IN lists
        statement = select(CallBooking.booking_id).where(CallBooking.booking_id.in_(ids[start:start + 1000]),
                                                         CallBooking.action.in_(("book", "reschedule")))
        found.update(await session.scalars(statement))
    return found


async def phone_booking_calls(session: AsyncSession, first: date, last: date) -> list[tuple[int, bool]]:
    """The period's phone_booking calls (by business date), each with whether it booked or moved a booking."""
    booked = (select(CallBooking.id).where(CallBooking.call_id == Call.id,
                                           CallBooking.action.in_(("book", "reschedule"))).exists())
    statement = (select(Call.id, booked).where(Call.category == "phone_booking", Call.business_date >= first,
                                               Call.business_date <= last).order_by(Call.id))
    return [(call_id, bool(has)) for call_id, has in await session.execute(statement)]


async def attempts_of(session: AsyncSession, callback_ids: Collection[int]) -> dict[int, list[CallbackAttempt]]:
    found: dict[int, list[CallbackAttempt]] = {callback_id: [] for callback_id in callback_ids}
    if callback_ids:
        statement = (select(CallbackAttempt).where(CallbackAttempt.callback_id.in_(callback_ids))
                     .order_by(CallbackAttempt.id))
        for row in await session.scalars(statement):
            found[row.callback_id].append(row)
    return found


async def attempt_by_key(session: AsyncSession, callback_id: int, request_key: str) -> CallbackAttempt | None:
    statement = select(CallbackAttempt).where(CallbackAttempt.callback_id == callback_id,
                                              CallbackAttempt.request_key == request_key)
    return (await session.scalars(statement)).one_or_none()


async def waiting_queues(session: AsyncSession) -> list[tuple[str, int, datetime | None]]:
    """Queued calls not yet answered: per queue, how many and since when the longest has waited."""
    statement = (select(Call.queue, func.count(Call.id), func.min(Call.queued_at)).where(Call.state == "queued")
                 .group_by(Call.queue).order_by(Call.queue))
    return [(queue or "", int(count), since) for queue, count, since in await session.execute(statement)]


async def agents_today(session: AsyncSession, day: date) -> list[Any]:
    """Per agent who answered a call started today or is on one: calls today, the open call, the last end."""
    statement = (select(Call.agent, Call.id, Call.state, Call.business_date, Call.ended_at)
                 .where(Call.agent.is_not(None), (Call.business_date == day) | (Call.state == OPEN))
                 .order_by(Call.agent, Call.id))
    return list(await session.execute(statement))


async def day_figures(session: AsyncSession, day: date) -> list[tuple[str, str | None, str | None, bool, int]]:
    """The day's calls grouped by state, category, outcome and whether an agent answered."""
    answered = Call.answered_at.is_not(None)
    statement = (select(Call.state, Call.category, Call.outcome, answered, func.count(Call.id))
                 .where(Call.business_date == day).group_by(Call.state, Call.category, Call.outcome, answered))
    return [(state, category, outcome, bool(was_answered), int(count))
            for state, category, outcome, was_answered, count in await session.execute(statement)]
