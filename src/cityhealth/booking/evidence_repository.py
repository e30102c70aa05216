"""What other rooms ask of a resident's bookings as evidence (the shared record's access check): ids only."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking.models import Booking


async def booking_at_organization(session: AsyncSession, resident_id: int, organization_id: int, first_day: date,
                                  last_day: date) -> int | None:
    """The latest booked or checked-in booking of a resident at an organization between two service days."""
    return await session.scalar(
        select(Booking.id).where(Booking.resident_id == resident_id, Booking.organization_id == organization_id,
                                 Booking.service_date.between(first_day, last_day),
                                 Booking.status.in_(("booked", "checked_in")))
        .order_by(Booking.service_date.desc(), Booking.id.desc()).limit(1))
