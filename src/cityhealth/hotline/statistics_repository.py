"""The month's call figures from the maintained counters: the calls' tallies (models.CallTally) grouped by city
and category, by day and by hour of the day; the self-service questions' days. No call or query is read."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.hotline.knowledge_models import SelfServiceDay
from cityhealth.hotline.models import CallTally

_CALLS = func.sum(CallTally.calls)


def _in_month(first: date, last: date) -> list[ColumnElement[bool]]:
    return [CallTally.business_date >= first, CallTally.business_date <= last]


async def by_city_and_category(session: AsyncSession, first: date, last: date) -> list[tuple[Any, Any, int]]:
    """(city code, category, calls) with calls; `""` for a category not known yet."""
    statement = (select(CallTally.city_code, CallTally.category, _CALLS).where(*_in_month(first, last))
                 .group_by(CallTally.city_code, CallTally.category).having(_CALLS > 0))
    return [(city, category, int(count)) for city, category, count in await session.execute(statement)]


async def peak_day(session: AsyncSession, first: date, last: date) -> tuple[date, int] | None:
    """The busiest day (the earliest of equals)."""
    statement = (select(CallTally.business_date, _CALLS).where(*_in_month(first, last))
                 .group_by(CallTally.business_date).having(_CALLS > 0)
                 .order_by(_CALLS.desc(), CallTally.business_date).limit(1))
    row = (await session.execute(statement)).one_or_none()
    return None if row is None else (row[0], int(row[1]))


async def peak_hour(session: AsyncSession, first: date, last: date) -> tuple[int, int] | None:
    """The busiest hour of the day over the month (the earliest of equals)."""
    statement = (select(CallTally.start_hour, _CALLS).where(*_in_month(first, last))
                 .group_by(CallTally.start_hour).having(_CALLS > 0)
                 .order_by(_CALLS.desc(), CallTally.start_hour).limit(1))
    row = (await session.execute(statement)).one_or_none()
    return None if row is None else (int(row[0]), int(row[1]))


async def self_service_questions(session: AsyncSession, first: date, last: date) -> tuple[int, int]:
    """(asked, answered): the self-service questions of the days first to last (Asia/Shanghai)."""
    statement = select(func.coalesce(func.sum(SelfServiceDay.asked), 0),
                       func.coalesce(func.sum(SelfServiceDay.answered), 0)).where(
        SelfServiceDay.business_date >= first, SelfServiceDay.business_date <= last)
    asked, answered = (await session.execute(statement)).one()
    return int(asked), int(answered)
