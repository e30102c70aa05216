"""The month's call figures: counts grouped by city and category, by day and by hour of the day; the
self-service questions asked and answered. Every figure is an aggregate in SQL: no call is loaded."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.hotline.knowledge_models import SelfServiceQuery
from cityhealth.hotline.models import Call

_COUNT = func.count(Call.id)


def _in_month(first: date, last: date) -> list[ColumnElement[bool]]:
    # A call counts from its start: `business_date` is set exactly when the start is known.
    return [Call.business_date >= first, Call.business_date <= last]


async def by_city_and_category(session: AsyncSession, first: date, last: date) -> list[tuple[Any, Any, int]]:
    statement = (select(Call.city_code, Call.category, _COUNT).where(*_in_month(first, last))
                 .group_by(Call.city_code, Call.category))
    return [(city, category, int(count)) for city, category, count in await session.execute(statement)]


async def peak_day(session: AsyncSession, first: date, last: date) -> tuple[date, int] | None:
    """The busiest day (the earliest of equals)."""
    statement = (select(Call.business_date, _COUNT).where(*_in_month(first, last)).group_by(Call.business_date)
                 .order_by(_COUNT.desc(), Call.business_date).limit(1))
    row = (await session.execute(statement)).one_or_none()
    return None if row is None or row[0] is None else (row[0], int(row[1]))


async def peak_hour(session: AsyncSession, first: date, last: date) -> tuple[int, int] | None:
    """The busiest hour of the day over the month (the earliest of equals)."""
    statement = (select(Call.start_hour, _COUNT).where(*_in_month(first, last)).group_by(Call.start_hour)
                 .order_by(_COUNT.desc(), Call.start_hour).limit(1))
    row = (await session.execute(statement)).one_or_none()
    return None if row is None or row[0] is None else (int(row[0]), int(row[1]))


async def self_service_questions(session: AsyncSession, since: datetime, until: datetime) -> tuple[int, int]:
    """(asked, answered): the self-service questions asked in [since, until)."""
    answered = func.coalesce(func.sum(case((SelfServiceQuery.answered.is_(True), 1), else_=0)), 0)
    statement = select(func.count(SelfServiceQuery.id), answered).where(
        SelfServiceQuery.asked_at >= since, SelfServiceQuery.asked_at < until)
    asked, answered_count = (await session.execute(statement)).one()
    return int(asked), int(answered_count)
