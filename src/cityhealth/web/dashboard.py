"""The data-quality dashboard: units ranked by real-time conformance, a unit's days and rejections (public
aggregates), and the unit's rejected records (operators only: record ids and errors)."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from cityhealth.context import ClockDep, SessionDep
from cityhealth.db.types import INT64_MAX, RowId
from cityhealth.errors import ValidationFailed
from cityhealth.security.principals import Principal, Scope
from cityhealth.web import sources, svg
from cityhealth.web.session import require_login
from cityhealth.web.sources import UnitQuality
from cityhealth.web.templating import page

router = APIRouter(prefix="/dashboard/quality", include_in_schema=False)

Operator = Annotated[Principal, Depends(require_login(Scope.COLLECTION_READ))]
MonthQuery = Annotated[str | None, Query(max_length=16, description="YYYY-MM (default: the latest month with data)")]
RECORDS_PAGE = 100
RULES_CHARTED = 15
GROUPS = (("门急诊", "outpatient_pct"), ("出院", "inpatient_pct"))


async def _month(session: SessionDep, clock: ClockDep, month: str | None) -> str:
    if month is not None:
        return sources.parse_month(month)
    months = await sources.months_with_data(session, clock)
    return months[0] if months else sources.business_month(clock.now())


def conformance_chart(rows: tuple[UnitQuality, ...], title: str) -> Markup | None:
    """Both rates of every measured unit, in ranking order; None when no unit is measured."""
    rows = tuple(row for row in rows if row.is_measured)
    if not rows:
        return None
    bars = svg.series([(label, [None if getattr(row, attribute) is None else float(getattr(row, attribute))
                                for row in rows]) for label, attribute in GROUPS])
    return svg.horizontal_bars([row.name for row in rows], bars, title=title, maximum=100,
                               value_text=lambda value: f"{value:.2f}%" if value % 1 else f"{value:.0f}%")


def _months_around(month: str) -> dict[str, Any]:
    return {"month": month, "previous": sources.shift_month(month, -1), "following": sources.shift_month(month, 1)}


@router.get("", response_class=HTMLResponse)
async def ranking(request: Request, session: SessionDep, clock: ClockDep, month: MonthQuery = None) -> HTMLResponse:
    chosen = await _month(session, clock, month)
    quality = await sources.month_quality(session, clock, chosen)
    return page(
        request, "dashboard.html", quality=quality, **_months_around(chosen),
        district_chart=conformance_chart(quality.districts, f"{chosen} 各区实时数据符合率"),
        hospital_chart=conformance_chart(quality.hospitals, f"{chosen} 各医院实时数据符合率"),
    )


@router.get("/units/{organization_id}", response_class=HTMLResponse)
async def unit(request: Request, organization_id: RowId, session: SessionDep, clock: ClockDep,
               month: MonthQuery = None) -> HTMLResponse:
    chosen = await _month(session, clock, month)
    organization = await sources.organization(session, organization_id)
    quality = await sources.month_quality(session, clock, chosen)
    days = await sources.unit_days(session, clock, organization_id, chosen)
    rejections = await sources.unit_rejections(session, organization_id, chosen)
    days_chart = rules_chart = None
    if days:
        days_chart = svg.stacked_columns(
            [str(day.day.day) for day in days],
            svg.series([("入库", [day.stored for day in days]), ("重复", [day.duplicate for day in days]),
                        ("退回", [day.rejected for day in days])]),
            title=f"{organization.name} {chosen} 每日上传情况")
    if rejections:
        by_rule: Counter[str] = Counter()
        for row in rejections:
            by_rule[row.rule] += row.count
        top = by_rule.most_common(RULES_CHARTED)
        rules_chart = svg.horizontal_bars([rule for rule, _ in top], svg.series([("退回次数", [n for _, n in top])]),
                                          title=f"{organization.name} {chosen} 退回原因（按规则）")
    return page(request, "unit.html", organization=organization, row=quality.row_of(organization),
                forms_total=quality.forms_total, days=days, rejections=rejections, days_chart=days_chart,
                rules_chart=rules_chart, **_months_around(chosen))


def _after(value: str | None) -> tuple[int, int] | None:
    """The page cursor "JOB:POSITION" of the last record shown."""
    if not value:
        return None
    job, _, position = value.partition(":")
    # isdigit() alone admits "²" and other digits int() refuses; each part must also fit a database integer.
    if not all(part.isascii() and part.isdigit() and int(part) <= INT64_MAX for part in (job, position)):
        raise ValidationFailed("after is JOB:POSITION, e.g. 12:340", field="after", value=value, rule="cursor.format")
    return int(job), int(position)


@router.get("/units/{organization_id}/rejections", response_class=HTMLResponse)
async def rejected_records(request: Request, organization_id: RowId, principal: Operator, session: SessionDep,
                           clock: ClockDep, month: MonthQuery = None,
                           rule: Annotated[str | None, Query(max_length=48)] = None,
                           after: Annotated[str | None, Query(max_length=40)] = None) -> HTMLResponse:
    chosen = await _month(session, clock, month)
    organization = await sources.organization(session, organization_id)
    rule = rule or None  # an empty ?rule= is every rule
    # One record more than the page shows: a "next page" link only when there is one.
    records = await sources.rejected_records(session, clock, principal, organization_id, chosen, rule=rule,
                                             after=_after(after), limit=RECORDS_PAGE + 1)
    following = None
    if len(records) > RECORDS_PAGE:
        records = records[:RECORDS_PAGE]
        following = f"{records[-1].job_id}:{records[-1].position}"
    return page(request, "rejections.html", organization=organization, rule=rule, records=records,
                following_page=following, **_months_around(chosen))
