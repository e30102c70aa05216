"""The holiday calendar's use cases: a year's arrangement (set by an operator, else shipped, else none), setting
one, and the deadline of a work order counted on it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.config import Settings
from cityhealth.errors import ValidationFailed
from cityhealth.hotline import work_order_repository as repository
from cityhealth.hotline.holiday_calendar import NamedDay, WorkCalendar, YearDays, shipped_years, years_spanned
from cityhealth.hotline.work_order_schemas import DayIn, HolidayYearIn, HolidayYearRead
from cityhealth.security.audit import Action, record
from cityhealth.security.principals import Principal

FIRST_YEAR, LAST_YEAR = 2000, 2100


def working_days_for(settings: Settings, category: str) -> int:
    """The deadline of a category in working days (configurable within domain.md's ranges)."""
    return {"consultation": settings.hotline_consultation_days, "help": settings.hotline_help_days,
            "complaint": settings.hotline_complaint_days, "urgent": 0}[category]


async def years(session: AsyncSession, wanted: list[int]) -> dict[int, YearDays]:
    """Each wanted year's arrangement that is known: an operator's, else the shipped one."""
    found = {year: days for year, days in shipped_years().items() if year in wanted}
    for year, (row, days) in (await repository.holiday_years(session, wanted)).items():
        found[year] = YearDays(year, "set", "set", row.note,
                               tuple(NamedDay(day.day, day.kind, day.name) for day in days))
    return found


async def calendar_for(session: AsyncSession, moment: datetime, working_days: int) -> WorkCalendar:
    """The calendar over the years a deadline from `moment` may reach."""
    wanted = years_spanned(moment, working_days)
    known = await years(session, wanted)
    return WorkCalendar.of(known.values(), missing=[year for year in wanted if year not in known])


async def deadline(session: AsyncSession, settings: Settings, category: str, moment: datetime,
                   extra_days: int = 0) -> datetime:
    days = working_days_for(settings, category) + extra_days
    return (await calendar_for(session, moment, days)).deadline(moment, days)


async def extended(session: AsyncSession, due_at: datetime, working_days: int) -> datetime:
    """A due time moved by `working_days` working days (an approved extension)."""
    return (await calendar_for(session, due_at, working_days)).deadline(due_at - _TICK, working_days)


_TICK = datetime.resolution  # a due time is a midnight: the day it ends is the day before it


def _read(year: int, found: YearDays | None) -> HolidayYearRead:
    if found is None:
        return HolidayYearRead(year=year, source="none", status="none",
                               note="no arrangement known: weekends only", holidays=[], workdays=[])
    return HolidayYearRead(
        year=year, source="set" if found.source == "set" else "shipped", status=found.status, note=found.note,
        holidays=[DayIn(day=d.day, name=d.name) for d in found.days if d.kind == "holiday"],
        workdays=[DayIn(day=d.day, name=d.name) for d in found.days if d.kind == "workday"])


def _check_year(year: int) -> None:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValidationFailed(f"a year between {FIRST_YEAR} and {LAST_YEAR}", field="year", value=year,
                               rule="hotline.holidays.year")


async def get_year(session: AsyncSession, year: int) -> HolidayYearRead:
    _check_year(year)
    return _read(year, (await years(session, [year])).get(year))


async def set_year(session: AsyncSession, clock: Clock, principal: Principal | None, year: int,
                   data: HolidayYearIn, *, operator: str | None = None) -> HolidayYearRead:
    """Set a year's holidays and adjusted working weekends, replacing what was known of it."""
    _check_year(year)
    seen: dict[object, str] = {}
    for kind, days in (("holidays", data.holidays), ("workdays", data.workdays)):
        for index, day in enumerate(days):
            where = f"{kind}[{index}].day"
            if day.day.year != year:
                raise ValidationFailed(f"{day.day} is not in {year}", field=where, value=str(day.day),
                                       rule="hotline.holidays.in_year")
            if day.day in seen:
                raise ValidationFailed(f"{day.day} is listed twice (also in {seen[day.day]})", field=where,
                                       value=str(day.day), rule="hotline.holidays.once")
            if kind == "workdays" and day.day.weekday() < 5:
                raise ValidationFailed(f"{day.day} is a weekday: an adjusted working day is a weekend day",
                                       field=where, value=str(day.day), rule="hotline.holidays.workday_weekend")
            seen[day.day] = kind
    actor = operator or (principal.subject if principal else "unknown")
    await repository.replace_holiday_year(
        session, year, data.note, actor, clock.now(),
        [(d.day, "holiday", d.name) for d in data.holidays] + [(d.day, "workday", d.name) for d in data.workdays])
    record(session, clock, principal, Action.UPDATE, "hotline_holiday_year", resource_id=year,
           detail=f"holidays={len(data.holidays)} workdays={len(data.workdays)}", actor=operator,
           actor_kind="operator" if operator else None)
    return await get_year(session, year)
