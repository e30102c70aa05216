"""Operators' configuration of data collection: real-time monitoring enrolment, expected forms, and the
opening balances a center migrating from an older platform records."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.collection.models import (
    BALANCE_KINDS,
    GROUPS,
    Enrolment,
    FormAssignment,
    OpeningBalance,
)
from cityhealth.collection.repository import organizations
from cityhealth.collection.repository.organizations import Sender
from cityhealth.collection.service import known_form
from cityhealth.errors import ValidationFailed


async def _organization(session: AsyncSession, code: str) -> Sender:
    sender = await organizations.organization_by_code(session, code)
    if sender is None:
        # A field of the body names it (not the path): the request is what is wrong, so 422, not 404.
        raise ValidationFailed(f"no organization with code {code!r}", code="organization_not_found",
                               field="organization_code", value=code, rule="organization_code.known")
    return sender


def _dates(start: date, end: date | None) -> None:
    if end is not None and end < start:
        raise ValidationFailed(
            "end_date is before start_date",
            code="invalid_dates",
            field="end_date",
            value=end.isoformat(),
            rule="time.order",
        )


async def enrol(
    session: AsyncSession, clock: Clock, organization_code: str, group: str, start: date, end: date | None
) -> Enrolment:
    """Enrol a unit in real-time monitoring for a group (outpatient or inpatient) over a date range."""
    if group not in GROUPS:
        raise ValidationFailed(
            f"group must be one of {', '.join(GROUPS)}",
            code="invalid_group",
            field="group",
            value=group,
            rule="code.not_in_table",
        )
    _dates(start, end)
    sender = await _organization(session, organization_code)
    enrolment = Enrolment(
        organization_id=sender.id, group=group, start_date=start, end_date=end, created_at=clock.now()
    )
    session.add(enrolment)
    await session.flush()
    return enrolment


async def assign_forms(
    session: AsyncSession, clock: Clock, organization_code: str, forms: list[str], start: date, end: date | None
) -> list[FormAssignment]:
    """Record the forms a unit is expected to send over a date range."""
    _dates(start, end)
    for form in forms:
        known_form(form, "forms")
    sender = await _organization(session, organization_code)
    rows = [
        FormAssignment(organization_id=sender.id, form=form, start_date=start, end_date=end, created_at=clock.now())
        for form in dict.fromkeys(forms)
    ]
    session.add_all(rows)
    await session.flush()
    return rows


async def record_opening_balance(
    session: AsyncSession,
    clock: Clock,
    kind: str,
    count: int,
    as_of: date,
    *,
    organization_code: str | None = None,
    area_code: str | None = None,
) -> OpeningBalance:
    """Carry a cumulative figure over from an older platform (re-recording replaces it)."""
    if kind not in BALANCE_KINDS:
        raise ValidationFailed(
            f"kind must be one of {', '.join(BALANCE_KINDS)}",
            code="invalid_kind",
            field="kind",
            value=kind,
            rule="code.not_in_table",
        )
    if count < 0:
        raise ValidationFailed(
            "an opening balance is not negative", code="invalid_count", field="count", value=count, rule="range.min"
        )
    if kind == "accepted_total":
        scope = (
            "platform" if organization_code is None else f"org:{(await _organization(session, organization_code)).id}"
        )
    else:
        if area_code is None or area_code not in await organizations.area_names(session):
            raise ValidationFailed(
                "a health-record balance names a registered area_code",
                code="invalid_area",
                field="area_code",
                value=area_code,
                rule="area.unknown",
            )
        scope = f"area:{area_code}"
    balance = await session.get(OpeningBalance, (kind, scope))
    if balance is None:
        balance = OpeningBalance(kind=kind, scope=scope, as_of=as_of, count=count, recorded_at=clock.now())
        session.add(balance)
    else:
        balance.as_of, balance.count, balance.recorded_at = as_of, count, clock.now()
    await session.flush()
    return balance


async def list_enrolments(session: AsyncSession) -> list[Enrolment]:
    return list((await session.execute(select(Enrolment).order_by(Enrolment.id))).scalars())


async def list_assignments(session: AsyncSession) -> list[FormAssignment]:
    return list((await session.execute(select(FormAssignment).order_by(FormAssignment.id))).scalars())


# --- code tables and retention --------------------------------------------------------------------------------
