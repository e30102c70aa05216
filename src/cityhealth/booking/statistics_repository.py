"""The booking statistics' queries: the monthly counters by hospital and app, and the opening balances."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from cityhealth.booking.models import (
    MonthlyStat,
    OpeningBalance,
)
from cityhealth.registry.models import ClientApp, Organization


async def month_by_hospital(session: AsyncSession, month: str) -> list[tuple[int, str, str, int]]:
    """(hospital, its name, channel, bookings) of the month."""
    rows = (await session.execute(
        select(MonthlyStat.organization_id, Organization.name, MonthlyStat.channel, func.sum(MonthlyStat.bookings))
        .join(Organization, Organization.id == MonthlyStat.organization_id)
        .where(MonthlyStat.month == month)
        .group_by(MonthlyStat.organization_id, Organization.name, MonthlyStat.channel))).all()
    return [(int(r[0]), r[1], r[2], int(r[3])) for r in rows]


async def month_by_app(session: AsyncSession, month: str, channels: tuple[str, ...]) -> list[tuple[int, str, int]]:
    """(app, its name, bookings) of the month through `channels`, leaving out hospitals' own front-ends."""
    operator = aliased(Organization)
    rows = (await session.execute(
        select(ClientApp.id, ClientApp.name, func.sum(MonthlyStat.bookings))
        .join(ClientApp, ClientApp.id == MonthlyStat.client_app_id)
        .outerjoin(operator, operator.id == ClientApp.organization_id)
        .where(MonthlyStat.month == month, MonthlyStat.channel.in_(channels),
               or_(operator.id.is_(None), operator.kind != "hospital"))
        .group_by(ClientApp.id, ClientApp.name))).all()
    return [(int(r[0]), r[1], int(r[2])) for r in rows]


async def bookings_made_until(session: AsyncSession, month: str, last_day: date) -> int:
    """Bookings counted up to the month's end: the counters and the opening balances."""
    made = (await session.execute(select(func.coalesce(func.sum(MonthlyStat.bookings), 0))
                                  .where(MonthlyStat.month <= month))).scalar_one()
    opening = (await session.execute(select(func.coalesce(func.sum(OpeningBalance.bookings), 0))
                                     .where(OpeningBalance.as_of <= last_day))).scalar_one()
    return int(made) + int(opening)


async def opening_balance(session: AsyncSession, as_of: date) -> OpeningBalance | None:
    found: OpeningBalance | None = (await session.execute(
        select(OpeningBalance).where(OpeningBalance.as_of == as_of))).scalar_one_or_none()
    return found
