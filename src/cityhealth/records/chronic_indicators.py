"""The chronic programmes' monthly indicators, counted from the patient-month table.

`rebuild_month` fills `chronic_patient_months` for one month (the CLI and the monthly task call it): one row per
registration on the register at month end, with what each indicator needs to know about that patient. The
indicators are then sums over that table per area or team, never a scan of the follow-ups.
docs/decisions/records-chronic.md defines each indicator with its numerator and denominator.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.errors import ValidationFailed
from cityhealth.records import chronic_repository as repository
from cityhealth.records import chronic_rules as rules
from cityhealth.records import family_repository
from cityhealth.records.chronic_models import ChronicFollowup, ChronicRegistration
from cityhealth.records.chronic_schemas import IndicatorRow

STANDARD_FOLLOWUPS = 4  # 规范管理: at least four follow-ups a year
HEARTS_MONTHS = 3  # the HEARTS reading window and the time on the register it asks for
_CHUNK = 1000


def parse_month(value: str, field: str = "month") -> tuple[int, date, date]:
    """(yyyymm, first day, last day) of a "YYYY-MM" month, else 422."""
    try:
        year, month = (int(part) for part in value.split("-"))
        first = date(year, month, 1)
    except ValueError:
        raise ValidationFailed(f"{field} must be YYYY-MM", field=field, value=value, rule="month.format") from None
    if len(value) != 7:
        raise ValidationFailed(f"{field} must be YYYY-MM", field=field, value=value, rule="month.format")
    return year * 100 + month, first, date(year, month, calendar.monthrange(year, month)[1])


def patient_month(registration: ChronicRegistration, followups: list[ChronicFollowup], first: date,
                  last: date) -> dict[str, Any]:
    """What the indicators know of one patient in the month ending `last` (`followups`: theirs in the 12 months
    to `last`, in visit order)."""
    window_start = rules.add_months(first, -11)
    in_year = [f for f in followups if window_start <= f.visit_date <= last]
    latest = in_year[-1] if in_year else None
    controlled = latest is not None and rules.is_controlled(registration.program, rules.Readings(
        sbp=latest.sbp, dbp=latest.dbp, fbg_mmol_l=latest.fbg_mmol_l, adverse_reaction=latest.adverse_reaction,
        new_complication=latest.new_complication))
    recent_start = rules.add_months(first, -(HEARTS_MONTHS - 1))
    eligible = (registration.program == "hypertension" and registration.registered_on < recent_start
                and bool(in_year))
    recent = [f for f in in_year if f.visit_date >= recent_start]
    hearts_controlled = eligible and bool(recent) and rules.bp_controlled(recent[-1].sbp, recent[-1].dbp)
    return {"registration_id": registration.id, "program": registration.program,
            "area_code": registration.area_code, "organization_id": registration.organization_id,
            "followups_12m": len(in_year), "is_standard": len(in_year) >= STANDARD_FOLLOWUPS,
            "is_controlled": controlled, "hearts_eligible": eligible, "hearts_controlled": hearts_controlled}


async def rebuild_month(session: AsyncSession, clock: Clock, month: str) -> int:
    """Refill the patient-month table for `month` ("YYYY-MM"); running it again gives the same rows."""
    key, first, last = parse_month(month)
    window_start = rules.add_months(first, -11)
    await repository.clear_month(session, key)
    now, written, after_id = clock.now(), 0, 0
    while True:
        registrations = await repository.registrations_on_register(session, last, after_id=after_id, limit=_CHUNK)
        if not registrations:
            return written
        after_id = registrations[-1].id
        by_registration: dict[int, list[ChronicFollowup]] = defaultdict(list)
        for row in await repository.followups_between(session, [r.id for r in registrations], window_start, last):
            by_registration[row.registration_id].append(row)
        teams = await family_repository.teams_on(session, {r.resident_id for r in registrations}, last)
        rows = [patient_month(r, by_registration[r.id], first, last)
                | {"month": key, "team_id": teams.get(r.resident_id), "computed_at": now} for r in registrations]
        await repository.insert_patient_months(session, rows)
        written += len(rows)


def _percent(numerator: int, denominator: int) -> str | None:
    if denominator == 0:
        return None
    return str((Decimal(100 * numerator) / denominator).quantize(Decimal("0.01"), ROUND_HALF_UP))


async def indicators(session: AsyncSession, month: str, program: str, by: Literal["area", "team"]
                     ) -> list[IndicatorRow]:
    """The month's indicators per area or team, from the patient-month table (empty until it is rebuilt)."""
    key, _, _ = parse_month(month)
    found = []
    for group, managed, standard, controlled, hearts_d, hearts_n in await repository.indicator_totals(
            session, key, program, by):
        found.append(IndicatorRow(
            month=month, program=program, area_code=group if by == "area" else None,
            team_id=group if by == "team" else None, managed=managed, standard_managed=standard,
            standard_rate_percent=_percent(standard, managed), controlled=controlled,
            control_rate_percent=_percent(controlled, managed), hearts_denominator=hearts_d,
            hearts_controlled=hearts_n, hearts_rate_percent=_percent(hearts_n, hearts_d)))
    return found


def previous_month(today: date) -> str:
    """The month before `today`'s, as "YYYY-MM" (what the monthly task rebuilds)."""
    last = today.replace(day=1) - timedelta(days=1)
    return f"{last.year:04d}-{last.month:02d}"
