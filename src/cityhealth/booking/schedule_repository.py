"""The schedules' queries: sessions made from templates (the feeds' and the search's are in feed_repository.py)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking.models import (
    BookingSession,
    SessionTemplate,
)


async def session_by_external_id(session: AsyncSession, organization_id: int, external_id: str,
                                 ) -> BookingSession | None:
    """The hospital's session with this key of its own, locked."""
    found: BookingSession | None = (await session.execute(select(BookingSession).where(
        BookingSession.organization_id == organization_id, BookingSession.external_id == external_id)
        .with_for_update())).scalar_one_or_none()
    return found


async def active_templates(session: AsyncSession, organization_id: int) -> list[SessionTemplate]:
    return list((await session.execute(select(SessionTemplate).where(
        SessionTemplate.organization_id == organization_id, SessionTemplate.is_active.is_(True))
        .order_by(SessionTemplate.id))).scalars())


async def external_ids_between(session: AsyncSession, organization_id: int, first: date, last: date) -> set[str]:
    return set((await session.execute(select(BookingSession.external_id).where(
        BookingSession.organization_id == organization_id,
        BookingSession.service_date.between(first, last)))).scalars())
