"""The month's hotline figures for the bulletin: calls per city and per category (each summing to the total),
the peak day and the peak hour of the day, the knowledge base's self-service answer rate, the work orders by
source with their on-time closure and satisfaction. A call counts in the month of its start (Asia/Shanghai); a
call whose start has not been reported yet counts nowhere; work orders count by their events' times. Every
figure is read from the counters the writes keep (the calls' tallies, the work orders' and the self-service
questions' days): a month costs its days, not its calls."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import month_bounds
from cityhealth.errors import Conflict
from cityhealth.hotline import repository, statistics_repository
from cityhealth.hotline.models import CATEGORIES
from cityhealth.hotline.schemas import (
    CallStatistics,
    CityCalls,
    HotlineMonth,
    PeakDay,
    PeakHour,
    SelfServiceFigures,
    WorkOrderCounts,
    WorkOrderPerformance,
)
from cityhealth.hotline.work_order_statistics import work_order_figures

UNCATEGORIZED = "uncategorized"


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
    for city_code, category, count in await statistics_repository.by_city_and_category(session, first, last):
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


async def work_order_month(session: AsyncSession, first: date, last: date
                           ) -> tuple[WorkOrderCounts, WorkOrderPerformance]:
    """The month's work orders by source, and how the month's closings and callbacks went (its days first to
    last, Asia/Shanghai)."""
    figures = await work_order_figures(session, first, last)
    performance = WorkOrderPerformance(
        closed=figures.closed, closed_on_time=figures.closed_on_time, on_time_rate_pct=_written(figures.on_time_rate),
        callbacks=figures.callbacks, satisfied=figures.satisfied, basically_satisfied=figures.basically_satisfied,
        dissatisfied=figures.dissatisfied, satisfaction_rate_pct=_written(figures.satisfaction_rate))
    return WorkOrderCounts(**figures.by_source), performance


def _written(rate: Decimal | None) -> str | None:
    return None if rate is None else f"{rate:.2f}"


def _percent(part: int, whole: int) -> str | None:
    if whole == 0:
        return None
    return f"{(Decimal(100 * part) / whole).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):.2f}"


async def monthly_statistics(session: AsyncSession, month: str, region_city: str) -> HotlineMonth:
    """The month's hotline figures, the region city's categories checked against its calls.

    A region call without a category (still in progress, or its end never reported) makes the categories
    fall short of the calls: refused with both numbers, rather than a bulletin whose figures do not add up.
    """
    figures = await call_statistics(session, month)
    first, last = month_bounds(month)
    region = figures.by_city_and_category.get(region_city, {})
    categories = {category: region.get(category, 0) for category in CATEGORIES}
    region_calls = next((city.calls for city in figures.by_city if city.city == region_city), 0)
    if sum(categories.values()) != region_calls:
        raise Conflict(
            f"city {region_city}'s calls by category sum to {sum(categories.values())}, not to its "
            f"{region_calls} calls of {month} ({region.get(UNCATEGORIZED, 0)} have no category yet)",
            code="hotline_categories_do_not_sum", field="calls_by_category",
            value={"categories": sum(categories.values()), "calls": region_calls},
            rule="hotline.categories.sum_to_calls")
    asked, answered = await statistics_repository.self_service_questions(session, first, last)
    work_orders, performance = await work_order_month(session, first, last)
    return HotlineMonth(
        month=month, region_city=region_city, total=figures.total, calls_by_city=figures.by_city,
        region_calls=region_calls, calls_by_category=categories,
        self_service=SelfServiceFigures(asked=asked, answered=answered, answer_rate_pct=_percent(answered, asked)),
        peak_day=figures.peak_day, peak_hour=figures.peak_hour,
        work_orders=work_orders, work_order_performance=performance,
    )


async def bulletin_section(session: AsyncSession, month: str, region_city: str) -> HotlineMonth:
    """The bulletin's hotline section of a month (the scenario format's `hotline`, and more besides)."""
    return await monthly_statistics(session, month, region_city)
