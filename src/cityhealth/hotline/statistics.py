"""The month's call figures for the bulletin: per city and per category (each summing to the total), the
peak day and the peak hour of the day. A call counts in the month of its start (Asia/Shanghai); a call
whose start has not been reported yet counts nowhere."""

from __future__ import annotations

import calendar
import re
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.errors import ValidationFailed
from cityhealth.hotline import repository, statistics_repository
from cityhealth.hotline.models import CATEGORIES
from cityhealth.hotline.schemas import CallStatistics, CityCalls, PeakDay, PeakHour

UNCATEGORIZED = "uncategorized"
_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")


def month_bounds(month: str) -> tuple[date, date]:
    match = _MONTH.fullmatch(month)
    if match is None:
        raise ValidationFailed("a month is written YYYY-MM", field="month", value=month, rule="month.format")
    year, number = int(match[1]), int(match[2])
    return date(year, number, 1), date(year, number, calendar.monthrange(year, number)[1])


async def call_statistics(session: AsyncSession, month: str) -> CallStatistics:
    """The month's calls by city, by category and by both, with the peaks.

    Every figure comes from one grouping of the month's calls, so the cities and the categories (calls not
    categorised yet count as `uncategorized`) each sum to the total, even while calls are being reported.
    """
    first, last = month_bounds(month)
    names = await repository.city_names(session)
    by_city: dict[str, int] = {}
    by_category: dict[str, int] = dict.fromkeys(CATEGORIES, 0)
    matrix: dict[str, dict[str, int]] = {}
    for city, category, count in await statistics_repository.by_city_and_category(session, first, last):
        city_code = city or ""
        key = category or UNCATEGORIZED
        by_city[city_code] = by_city.get(city_code, 0) + count
        by_category[key] = by_category.get(key, 0) + count
        matrix.setdefault(city_code, dict.fromkeys(CATEGORIES, 0))[key] = count
    total = sum(by_city.values())
    day = await statistics_repository.peak_day(session, first, last)
    hour = await statistics_repository.peak_hour(session, first, last)
    return CallStatistics(
        month=month, total=total,
        by_city=[CityCalls(city=code, name=names.get(code, code), calls=calls)
                 for code, calls in sorted(by_city.items(), key=lambda item: (-item[1], item[0]))],
        by_category=by_category, by_city_and_category=dict(sorted(matrix.items())),
        peak_day=PeakDay(day=day[0], calls=day[1]) if day else None,
        peak_hour=PeakHour(hour=hour[0], calls=hour[1]) if hour else None,
    )
