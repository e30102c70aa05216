"""Where the bulletin's figures come from: the one module that knows the domains' service functions.

Each domain computes its own section of the scenario format from its maintained monthly aggregates
(never from raw records, so this stays fast at any scale); the bulletin only gathers and checks them:

- hotline:    `hotline.statistics.bulletin_section(session, "YYYY-MM", region_code)` → HotlineMonth
              {calls_by_city[{city, name, calls}], calls_by_category{…six…}, work_orders{…},
               work_order_performance{closed, …, on_time_rate_pct, …, satisfaction_rate_pct}, …}
- booking:    `booking.service.bulletin_section(session, "YYYY-MM")` → BookingStatistics
              {by_hospital[{hospital, online_12320, phone, clinic, third_party}], by_app[{app, bookings}],
               cumulative_at_month_end}
- collection: `collection.quality.quality_report(session, "YYYY-MM")` → dict
              {month, forms_total, districts[…], hospitals[…], cumulative_accepted_at_month_end}
- telemed:    `telemed.statistics.month_statistics(session, "YYYY-MM", region_code)` → TelemedMonth
              {consultation, ecg, lab, imaging: NetworkMonth in the format's keys, + members_counted}
- pathology:  `telemed.pathology_statistics.pathology_totals(session, city_code, until)` → PathologyTotals
              {hospitals, experts, doctors, cases, reports, case_discussions, video_lectures}, cumulative
              at the month's last instant
- registry:   `registry.service.get_area` / `list_areas` for the region and its reported areas.

A source may return its section as a dict or as any object with the same attribute names; keys beyond
the section's (such as the report's own `month`) are checked against the request and then dropped.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking import service as booking_service
from cityhealth.clock import BUSINESS_TZ, month_bounds
from cityhealth.collection import quality as collection_quality
from cityhealth.errors import DomainError, ValidationFailed
from cityhealth.hotline import statistics as hotline_statistics
from cityhealth.registry import service as registry_service
from cityhealth.reporting.model import (
    AreaRef,
    BookingSection,
    BulletinData,
    CollectionSection,
    HotlineSection,
    Pathology,
    Region,
    TelemedSection,
    month_parts,
)
from cityhealth.telemed import pathology_statistics
from cityhealth.telemed import statistics as telemed_statistics

REPORTED_AREA_LEVELS = ("district", "reporting_unit")
_MAX_AREAS = 1000
SectionT = TypeVar("SectionT", bound=BaseModel)


class NoFigures(DomainError):
    """A month the platform holds nothing for: no bulletin is written of it, rather than an empty one."""

    status = 404
    code = "bulletin_no_figures"
    title = "No figures for the month"


def no_figures(month: str) -> NoFigures:
    return NoFigures(f"the platform holds no figures for {month}: nothing was booked, uploaded, called or "
                     "read in that month, so there is no bulletin to write", field="month", value=month,
                     rule="bulletin.month.has_figures")


async def gather_printable(session: AsyncSession, month: str, *, region_code: str | None = None) -> BulletinData:
    """`gather`, refusing a month that holds nothing to print (NoFigures) rather than writing an empty bulletin."""
    try:
        data = await gather(session, month, region_code=region_code)
    except ValidationFailed as exc:
        # No district reported anything, so the region could not be told from them: unless something was
        # booked, the month is empty (and naming the region would only give an empty bulletin).
        if exc.rule != "region.single_parent" or exc.value != []:
            raise
        booking = await booking_service.bulletin_section(session, month)
        if _section(BookingSection, booking, month, "booking").by_hospital:
            raise
        raise no_figures(month) from exc
    if not has_figures(data):
        raise no_figures(month)
    return data


def has_figures(data: BulletinData) -> bool:
    """Whether any section has something to print (a month of only zeros and empty tables has not)."""
    booking = data.booking is not None and bool(data.booking.by_hospital or data.booking.by_app)
    collection = data.collection is not None and bool(data.collection.districts or data.collection.hospitals)
    return booking or collection or data.hotline is not None or data.telemed is not None


def _section(model: type[SectionT], value: Any, month: str, source: str) -> SectionT:
    """A source's answer as a section model: its own keys only, and for the month that was asked for."""
    if isinstance(value, dict):
        answered = value.get("month", month)
        if answered != month:
            raise ValidationFailed(f"the {source} source answered for {answered}, not {month}",
                                   field="month", value=answered, rule="source.month")
        value = {key: item for key, item in value.items() if key in model.model_fields}
    return model.model_validate(value, from_attributes=True)


async def gather(session: AsyncSession, month: str, *, region_code: str | None = None) -> BulletinData:
    """The month's bulletin statistics from the hotline, booking and collection services and the registry."""
    try:
        year, number = month_parts(month)
    except ValueError as exc:
        raise ValidationFailed(str(exc), field="month", value=month, rule="month.format") from exc
    booking = _section(BookingSection, await booking_service.bulletin_section(session, month), month, "booking")
    collection = _section(
        CollectionSection, await collection_quality.quality_report(session, month), month, "collection"
    )
    region = await _region(session, region_code, collection)
    figures = await hotline_statistics.bulletin_section(session, month, region.code)
    # A platform that took no call and worked no work order in the month has no hotline section to print.
    worked = figures.work_order_performance
    has_hotline = (figures.total > 0 or any(figures.work_orders.model_dump().values())
                   or worked.closed > 0 or worked.callbacks > 0)
    hotline = _section(HotlineSection, figures.model_dump(), month, "hotline") if has_hotline else None
    return BulletinData(
        title=f"{region.name} {year}年{number}月",
        month=month,
        region=region,
        areas=await _areas(session, region),
        hotline=hotline,
        booking=booking,
        telemed=await _telemed(session, month, region.code),
        collection=collection,
    )


async def _telemed(session: AsyncSession, month: str, city_code: str) -> TelemedSection | None:
    """The networks' month and pathology's cumulative counts; None when the platform has no telemed at all."""
    networks = await telemed_statistics.month_statistics(session, month, city_code)
    # The month's last instant: the pathology room counts what happened by `until`, inclusive, and the members
    # of `until`'s business day.
    _, last_day = month_bounds(month)
    totals = await pathology_statistics.pathology_totals(
        session, city_code, datetime.combine(last_day, time.max, BUSINESS_TZ)
    )
    pathology = Pathology.model_validate(totals, from_attributes=True)
    if networks.is_empty and not any(pathology.model_dump().values()):
        return None
    document = networks.model_dump(exclude={"month", "city_code"}, exclude_none=True)
    return TelemedSection.model_validate(document | {"pathology": pathology})


async def _region(session: AsyncSession, region_code: str | None, collection: CollectionSection) -> Region:
    """The given region, or the one area every reported district belongs to."""
    if region_code is None:
        parents = {
            (await registry_service.get_area(session, district.area)).parent_code
            for district in collection.districts
        }
        if len(parents) != 1 or None in parents:
            raise ValidationFailed(
                "cannot tell the bulletin's region from the reported districts; name it explicitly",
                field="region", value=sorted(str(parent) for parent in parents), rule="region.single_parent",
            )
        region_code = str(parents.pop())
    area = await registry_service.get_area(session, region_code)
    return Region(code=area.code, name=area.name)


async def _areas(session: AsyncSession, region: Region) -> list[AreaRef]:
    page = await registry_service.list_areas(session, parent_code=region.code, active=True, limit=_MAX_AREAS)
    reported = [area for area in page.items if area.level in REPORTED_AREA_LEVELS]
    return [AreaRef(code=area.code, name=area.name) for area in sorted(reported, key=lambda area: area.code)]
