"""Where the pages' figures come from: the one module of the web room that knows the domains' services.

- the month's quality per unit: `collection.quality.quality_report(session, "YYYY-MM")`, the bulletin's
  two collection tables (districts, hospitals), parsed with the bulletin's own section model;
- the registry ids behind the report's rows: `registry.service.list_organizations`/`get_organization`;
- whether a month has data: `collection.quality.months_with_data` (one query for the whole window), then
  `booking.service.bulletin_section` for a month without collected data;
- a unit's days and its rejections by rule and field: `collection.quality.unit_days`/`unit_rejections`;
- its rejected records: `collection.service.rejected_records` (which checks the scope and audits the read).

Nothing here reads collection tables itself (the web room may use services only).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking import service as booking_service
from cityhealth.clock import Clock, business_date
from cityhealth.collection import quality as collection_quality
from cityhealth.collection import service as collection_service
from cityhealth.collection.drilldown import RejectedRecord
from cityhealth.collection.quality import RuleCount, UnitDay
from cityhealth.errors import ValidationFailed
from cityhealth.registry import service as registry_service
from cityhealth.registry.schemas import OrganizationRead
from cityhealth.reporting.model import (
    CollectionSection,
    DistrictCollection,
    HospitalCollection,
    days_in_month,
    month_parts,
)
from cityhealth.security.principals import Principal

SENDER_KINDS = ("hospital", "district_platform")
# The bulletin index looks this far back for months with data.
INDEX_MONTHS = 12
_PAGE = 500


def parse_month(value: str) -> str:
    """A "YYYY-MM" month, or a 422 naming the field, the value and the rule."""
    try:
        month_parts(value)
    except ValueError as exc:
        raise ValidationFailed(str(exc), field="month", value=value, rule="month.format") from exc
    return value


def business_month(moment: datetime) -> str:
    return business_date(moment).strftime("%Y-%m")


def shift_month(month: str, by: int) -> str:
    year, number = month_parts(month)
    index = year * 12 + number - 1 + by
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def month_days(month: str) -> list[date]:
    year, number = month_parts(month)
    return [date(year, number, day) for day in range(1, days_in_month(month) + 1)]


# --- the month's quality per unit -------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitQuality:
    """One row of the month's quality report, with the registered units behind it."""

    kind: Literal["district", "hospital"]
    name: str
    area_code: str | None
    organization_ids: tuple[int, ...]  # a district row adds up every platform of its area
    uploaded_records: int
    upload_days: int
    realtime_forms: int
    outpatient_visits: int
    discharges: int
    outpatient_pct: Decimal | None  # None: not measured, printed "/" (never 0)
    outpatient_basis: int | None
    inpatient_pct: Decimal | None
    inpatient_basis: int | None

    @property
    def is_measured(self) -> bool:
        """Monitored for outpatients or inpatients with records: the unit takes a place in the ranking."""
        return self.outpatient_pct is not None or self.inpatient_pct is not None


@dataclass(frozen=True)
class MonthQuality:
    month: str
    forms_total: int
    districts: tuple[UnitQuality, ...]
    hospitals: tuple[UnitQuality, ...]

    def row_of(self, organization: OrganizationRead) -> UnitQuality | None:
        """The report row an organization's figures are in (a district platform's: its area's row)."""
        rows = self.hospitals if organization.kind == "hospital" else self.districts
        for row in rows:
            if organization.id in row.organization_ids:
                return row
        return None


def conformance_rank(row: UnitQuality) -> tuple[bool, Decimal, bool, Decimal, int, str]:
    """Outpatient conformance, then inpatient, highest first; a "/" sorts after every measured rate."""
    return (row.outpatient_pct is None, -(row.outpatient_pct or Decimal(0)),
            row.inpatient_pct is None, -(row.inpatient_pct or Decimal(0)), -row.uploaded_records, row.name)


async def _senders(session: AsyncSession, clock: Clock) -> list[OrganizationRead]:
    found: list[OrganizationRead] = []
    for kind in SENDER_KINDS:
        offset = 0
        while True:
            page = await registry_service.list_organizations(session, clock, kind=kind, limit=_PAGE, offset=offset)
            found += page.items
            offset += len(page.items)
            if not page.items or offset >= page.total:
                break
    return found


def _unit(kind: Literal["district", "hospital"], name: str, area_code: str | None, ids: list[int],
          row: DistrictCollection | HospitalCollection) -> UnitQuality:
    return UnitQuality(
        kind=kind, name=name, area_code=area_code, organization_ids=tuple(ids),
        uploaded_records=row.uploaded_records, upload_days=row.upload_days, realtime_forms=row.realtime_forms,
        outpatient_visits=row.outpatient_visits, discharges=row.discharges,
        outpatient_pct=row.outpatient_conformance_pct, outpatient_basis=row.outpatient_conformance_basis,
        inpatient_pct=row.discharge_conformance_pct, inpatient_basis=row.discharge_conformance_basis,
    )


async def month_quality(session: AsyncSession, clock: Clock, month: str) -> MonthQuality:
    """The month's collection quality per district and hospital, ranked by real-time conformance."""
    report = await collection_quality.quality_report(session, month)
    section = CollectionSection.model_validate(
        {key: value for key, value in report.items() if key in CollectionSection.model_fields})
    senders = await _senders(session, clock)
    hospital_ids: dict[str, list[int]] = {}
    platform_ids: dict[str, list[int]] = {}
    for sender in senders:
        if sender.kind == "hospital":
            hospital_ids.setdefault(sender.name, []).append(sender.id)
        elif sender.area_code is not None:
            platform_ids.setdefault(sender.area_code, []).append(sender.id)
    districts = tuple(_unit("district", row.name, row.area, platform_ids.get(row.area, []), row)
                      for row in section.districts)
    hospitals = tuple(_unit("hospital", row.hospital, None, hospital_ids.get(row.hospital, []), row)
                      for row in section.hospitals)
    return MonthQuality(month=month, forms_total=section.forms_total,
                        districts=tuple(sorted(districts, key=conformance_rank)),
                        hospitals=tuple(sorted(hospitals, key=conformance_rank)))


async def organization(session: AsyncSession, organization_id: int) -> OrganizationRead:
    """The registered unit (404 when there is none)."""
    return await registry_service.get_organization(session, organization_id)


# --- which months have data -------------------------------------------------------------------------------


async def months_with_data(session: AsyncSession, clock: Clock, *, window: int = INDEX_MONTHS) -> list[str]:
    """The months with data among the last `window` (the current month included), latest first: anything
    uploaded or reported (one query to collection), else anything booked (cumulative balances do not count)."""
    current = business_month(clock.now())
    months = [shift_month(current, -back) for back in range(window)]
    collected = await collection_quality.months_with_data(session, months[-1], months[0])
    found: list[str] = []
    for month in months:
        if month not in collected:
            bookings = await booking_service.bulletin_section(session, month)  # booking has no cheaper answer
            if not (bookings.by_hospital or bookings.by_app):
                continue
        found.append(month)
    return found


# --- a unit's days, rejections and rejected records -----------------------------------------------------


async def unit_days(session: AsyncSession, clock: Clock, organization_id: int, month: str) -> list[UnitDay]:
    """Every day of the month up to today, zeros where nothing arrived."""
    answered = {row.day: row for row in await collection_quality.unit_days(session, organization_id, month)}
    today = business_date(clock.now())
    return [answered.get(day) or UnitDay(day=day, received=0, accepted=0, amended=0, revoked=0, duplicate=0,
                                         rejected=0)
            for day in month_days(month) if day <= today]


async def unit_rejections(session: AsyncSession, organization_id: int, month: str) -> list[RuleCount]:
    """The month's rejections by form, rule and field, most frequent first."""
    return await collection_quality.unit_rejections(session, organization_id, month)


async def rejected_records(session: AsyncSession, clock: Clock, principal: Principal, organization_id: int,
                           month: str, *, rule: str | None, after: tuple[int, int] | None,
                           limit: int) -> list[RejectedRecord]:
    """A page of the unit's rejected records in the month (bulk uploads only; the service audits the read)."""
    return await collection_service.rejected_records(session, clock, principal, organization_id, month, rule=rule,
                                                     after=after, limit=limit)
