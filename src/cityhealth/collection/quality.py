"""The monthly data-collection quality report: the bulletin's two tables, from the maintained aggregates only.

Shape: scenario-format.md `collection` — {forms_total, districts[], hospitals[], cumulative_accepted_at_month_end}.
"""

from __future__ import annotations

import calendar
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import extract, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.collection.models import (
    Conformance,
    DailyCount,
    Enrolment,
    FormAssignment,
    ManagedCount,
    MonthlyTotal,
    OpeningBalance,
    RejectionCount,
    Workload,
)
from cityhealth.collection.repository import organizations
from cityhealth.collection.standard import GROUPS, INPATIENT, OUTPATIENT, load_standard
from cityhealth.errors import ValidationFailed

_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
PROGRAM_BALANCES = {
    "basic": "health_record_basic",
    "hypertension": "health_record_hypertension",
    "diabetes": "health_record_diabetes",
}


def parse_month(value: str) -> tuple[int, date, date]:
    """'2022-06' -> (202206, first day, last day)."""
    match = _MONTH.fullmatch(value)
    if match is None:
        raise ValidationFailed(
            f"month must be YYYY-MM, not {value!r}",
            code="invalid_month",
            field="month",
            value=value,
            rule="format.month",
        )
    year, month = int(match.group(1)), int(match.group(2))
    return year * 100 + month, date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def percentage(conforming: int, basis: int) -> str:
    """100 × conforming / basis, rounded half up to two decimals, as the bulletin prints it."""
    value = (Decimal(conforming) * 100 / Decimal(basis)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"{value:.2f}"


async def quality_report(session: AsyncSession, month_text: str) -> dict[str, Any]:
    month, first, last = parse_month(month_text)
    standard = load_standard()
    upload_forms = [form.code for form in standard.forms.values() if form.counts_as_upload]
    realtime_forms = [form.code for form in standard.realtime_forms]

    daily = await session.execute(
        select(
            DailyCount.organization_id,
            DailyCount.day,
            DailyCount.form,
            DailyCount.received,
            DailyCount.accepted + DailyCount.amended + DailyCount.revoked,
        ).where(DailyCount.day >= first, DailyCount.day <= last)
    )
    uploaded: dict[int, int] = defaultdict(int)
    days: dict[int, set[date]] = defaultdict(set)
    forms_with_data: dict[int, set[str]] = defaultdict(set)
    for org, day, form, received, stored in daily:
        if form in upload_forms and received > 0:
            uploaded[org] += received
            days[org].add(day)
        if form in realtime_forms and stored > 0:
            forms_with_data[org].add(form)

    workload = await session.execute(
        select(Workload.organization_id, func.sum(Workload.visits), func.sum(Workload.discharges))
        .where(Workload.day >= first, Workload.day <= last)
        .group_by(Workload.organization_id)
    )
    visits = {org: (int(v or 0), int(d or 0)) for org, v, d in workload}

    conformance = {
        (org, group): (int(basis), int(conforming))
        for org, group, basis, conforming in await session.execute(
            select(Conformance.organization_id, Conformance.group, Conformance.basis, Conformance.conforming).where(
                Conformance.month == month
            )
        )
    }

    def overlapping(model: Any) -> tuple[Any, Any]:
        return (model.start_date <= last, or_(model.end_date.is_(None), model.end_date >= first))

    enrolled: set[tuple[int, str]] = set(
        (org, group)
        for org, group in await session.execute(
            select(Enrolment.organization_id, Enrolment.group).where(*overlapping(Enrolment))
        )
    )
    assigned = set(
        (await session.execute(select(FormAssignment.organization_id).where(*overlapping(FormAssignment)))).scalars()
    )

    def figures(orgs: list[int]) -> dict[str, Any]:
        """The row of one unit, or of an area served by several platforms: its days and forms are the union
        of theirs, and its rates are counted over their joint basis (never rebuilt from printed rates)."""
        row: dict[str, Any] = {
            "uploaded_records": sum(uploaded.get(org, 0) for org in orgs),
            "upload_days": len(set().union(*(days.get(org, set()) for org in orgs))),
            "realtime_forms": len(set().union(*(forms_with_data.get(org, set()) for org in orgs))),
            "outpatient_visits": sum(visits.get(org, (0, 0))[0] for org in orgs),
            "discharges": sum(visits.get(org, (0, 0))[1] for org in orgs),
        }
        for group, prefix in ((OUTPATIENT, "outpatient"), (INPATIENT, "discharge")):
            cells = [conformance.get((org, group), (0, 0)) for org in orgs if (org, group) in enrolled]
            basis, conforming = sum(cell[0] for cell in cells), sum(cell[1] for cell in cells)
            shown = basis > 0
            row[f"{prefix}_conformance_pct"] = percentage(conforming, basis) if shown else None
            row[f"{prefix}_conformance_basis"] = basis if shown else None
        return row

    senders = await organizations.organizations(session)
    names = await organizations.area_names(session)
    managed = await _managed_cumulative(session, month, last)

    platforms: dict[str, list[int]] = defaultdict(list)  # area -> its district platforms
    hospitals: list[dict[str, Any]] = []
    enrolled_orgs = {org for org, _ in enrolled}
    for sender in senders:
        if sender.kind == "district_platform" and sender.area_code:
            platforms[sender.area_code].append(sender.id)
        elif sender.kind == "hospital" and (
            sender.id in uploaded or sender.id in assigned or sender.id in enrolled_orgs or sender.id in visits
        ):
            hospitals.append({"hospital": sender.name, **figures([sender.id])})
    districts: dict[str, dict[str, Any]] = {}
    for area, ids in platforms.items():
        counts = managed.get(area, {})
        districts[area] = {
            "area": area,
            "name": names.get(area, area),
            **figures(ids),
            "health_records_cumulative": {program: counts.get(program, 0) for program in PROGRAM_BALANCES},
        }

    def order(row: dict[str, Any]) -> tuple[int, str]:
        return (-int(row["uploaded_records"]), str(row.get("name") or row.get("hospital")))

    return {
        "month": month_text,
        "forms_total": len(standard.realtime_forms),
        "districts": sorted(districts.values(), key=order),
        "hospitals": sorted(hospitals, key=order),
        "cumulative_accepted_at_month_end": await cumulative_accepted(session, month, last),
    }


async def _managed_cumulative(session: AsyncSession, month: int, last: date) -> dict[str, dict[str, int]]:
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    rows = await session.execute(
        select(ManagedCount.area_code, ManagedCount.program, func.sum(ManagedCount.added))
        .where(ManagedCount.month <= month)
        .group_by(ManagedCount.area_code, ManagedCount.program)
    )
    for area, program, added in rows:
        totals[area][program] += int(added or 0)
    balances = await session.execute(
        select(OpeningBalance.kind, OpeningBalance.scope, OpeningBalance.count).where(
            OpeningBalance.kind.in_(PROGRAM_BALANCES.values()), OpeningBalance.as_of <= last
        )
    )
    program_of = {kind: program for program, kind in PROGRAM_BALANCES.items()}
    for kind, scope, count in balances:
        if scope.startswith("area:"):
            totals[scope.removeprefix("area:")][program_of[kind]] += int(count)
    return totals


async def cumulative_accepted(session: AsyncSession, month: int, last: date) -> int:
    """Opening balances plus every record stored up to the month's end (running monthly totals, no scan)."""
    stored = (
        await session.execute(select(func.sum(MonthlyTotal.stored)).where(MonthlyTotal.month <= month))
    ).scalar_one()
    opening = (
        await session.execute(
            select(func.sum(OpeningBalance.count)).where(
                OpeningBalance.kind == "accepted_total", OpeningBalance.as_of <= last
            )
        )
    ).scalar_one()
    return int(stored or 0) + int(opening or 0)


# --- a unit's month, day by day and rule by rule (the dashboard's drill-down; public aggregates) ----------


@dataclass(frozen=True)
class UnitDay:
    """One upload day of a unit: its records (every upload form summed) by what became of them."""

    day: date
    received: int
    accepted: int  # new records stored
    amended: int
    revoked: int
    duplicate: int
    rejected: int

    @property
    def stored(self) -> int:
        """Records that changed the store: new, amended and revoked."""
        return self.accepted + self.amended + self.revoked


@dataclass(frozen=True)
class RuleCount:
    form: str
    rule: str
    field: str  # list positions folded: items[].amount
    count: int


_OUTCOMES = ("received", "accepted", "amended", "revoked", "duplicate", "rejected")


def _upload_forms() -> list[str]:
    return [form.code for form in load_standard().forms.values() if form.counts_as_upload]


async def unit_days(session: AsyncSession, organization_id: int, month_text: str) -> list[UnitDay]:
    """The unit's upload days of the month that have records, in date order, from the daily counters.

    Workload reports are a separate feed (domain.md §3) and are left out, so the days add up to the quality
    report's uploaded records; `flagged` follow-ups are a review, not an outcome, and are not shown.
    """
    _, first, last = parse_month(month_text)
    sums = [func.sum(getattr(DailyCount, name)) for name in _OUTCOMES]
    rows = await session.execute(
        select(DailyCount.day, *sums)
        .where(
            DailyCount.organization_id == organization_id,
            DailyCount.day >= first,
            DailyCount.day <= last,
            DailyCount.form.in_(_upload_forms()),
        )
        .group_by(DailyCount.day)
        .having(func.sum(DailyCount.received) > 0)  # a re-run can take a day's only rejections back out
        .order_by(DailyCount.day)
    )
    return [
        UnitDay(day=day, **{name: int(value or 0) for name, value in zip(_OUTCOMES, counts, strict=True)})
        for day, *counts in rows
    ]


async def unit_rejections(session: AsyncSession, organization_id: int, month_text: str) -> list[RuleCount]:
    """The month's rejections of the unit by form, rule and field, most frequent first.

    One record breaking two rules counts under each; rows whose form could not be told are not here.
    """
    _, first, last = parse_month(month_text)
    total = func.sum(RejectionCount.count)
    rows = await session.execute(
        select(RejectionCount.form, RejectionCount.rule, RejectionCount.field, total)
        .where(
            RejectionCount.organization_id == organization_id,
            RejectionCount.day >= first,
            RejectionCount.day <= last,
        )
        .group_by(RejectionCount.form, RejectionCount.rule, RejectionCount.field)
        .having(total > 0)
    )
    found = [RuleCount(form, rule, field, int(count)) for form, rule, field, count in rows]
    # Sorted here, not in SQL: PostgreSQL's collation would order the ties differently from SQLite.
    return sorted(found, key=lambda row: (-row.count, row.rule, row.field, row.form))


async def months_with_data(session: AsyncSession, first_month: str, last_month: str) -> set[str]:
    """The months from `first_month` to `last_month` in which any unit uploaded records or sent a workload
    report with visits or discharges: one grouped query over the daily counters and the workload table."""
    _, first, _ = parse_month(first_month)
    _, _, last = parse_month(last_month)
    uploads = (
        select(extract("year", DailyCount.day).label("year"), extract("month", DailyCount.day).label("month"))
        .where(
            DailyCount.day >= first,
            DailyCount.day <= last,
            DailyCount.form.in_(_upload_forms()),
            DailyCount.received > 0,
        )
        .group_by(extract("year", DailyCount.day), extract("month", DailyCount.day))
    )
    workload = (
        select(extract("year", Workload.day), extract("month", Workload.day))
        .where(Workload.day >= first, Workload.day <= last, or_(Workload.visits > 0, Workload.discharges > 0))
        .group_by(extract("year", Workload.day), extract("month", Workload.day))
    )
    rows = await session.execute(uploads.union(workload))
    return {f"{int(year):04d}-{int(month):02d}" for year, month in rows}


__all__ = [
    "GROUPS",
    "RuleCount",
    "UnitDay",
    "cumulative_accepted",
    "months_with_data",
    "parse_month",
    "percentage",
    "quality_report",
    "unit_days",
    "unit_rejections",
]
