"""Queries of the scheduler's view of a session: its live bookings and its open waitlist, in order."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking.models import ACTIVE_STATUSES, Booking, WaitlistEntry


async def session_bookings(session: AsyncSession, session_id: int) -> list[Booking]:
    """The session's held, booked and checked-in bookings, by slot."""
    rows = await session.execute(select(Booking).where(Booking.session_id == session_id,
                                                       Booking.status.in_(ACTIVE_STATUSES))
                                 .order_by(Booking.slot_no, Booking.id))
    return list(rows.scalars())


async def open_waitlist(session: AsyncSession, session_id: int) -> list[WaitlistEntry]:
    """The session's waiting and offered entries, in the order the waitlist serves them (waitlist.promote)."""
    rows = await session.execute(select(WaitlistEntry).where(WaitlistEntry.session_id == session_id,
                                                             WaitlistEntry.status.in_(("waiting", "offered")))
                                 .order_by(WaitlistEntry.id))
    return list(rows.scalars())
