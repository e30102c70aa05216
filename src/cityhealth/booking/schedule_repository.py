"""The schedules' and the published feeds' queries: sessions made from templates, released sessions."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from cityhealth.booking.models import (
    BookingSession,
    SessionTemplate,
)
from cityhealth.registry.models import Department, Organization, Practitioner

_SESSIONS = cast(Table, BookingSession.__table__)


async def session_by_external_id(session: AsyncSession, organization_id: int, external_id: str,
                                 ) -> BookingSession | None:
    """The hospital's session with this key of its own, locked."""
    found: BookingSession | None = (await session.execute(select(BookingSession).where(
        BookingSession.organization_id == organization_id, BookingSession.external_id == external_id)
        .with_for_update())).scalar_one_or_none()
    return found


async def active_templates(session: AsyncSession, organization_id: int) -> list[SessionTemplate]:
    return list((await session.execute(select(SessionTemplate).where(
        SessionTemplate.organization_id == organization_id, SessionTemplate.is_active.is_(True))
        .order_by(SessionTemplate.id))).scalars())


async def external_ids_between(session: AsyncSession, organization_id: int, first: date, last: date) -> set[str]:
    return set((await session.execute(select(BookingSession.external_id).where(
        BookingSession.organization_id == organization_id,
        BookingSession.service_date.between(first, last)))).scalars())


async def sessions_between(connection: AsyncConnection, first: date, last: date, *, organization_id: int | None,
                           department_id: int | None, practitioner_id: int | None,
                           limit: int = 1000) -> list[dict[str, Any]]:
    """The sessions of the days matching the filters, in time order (whole rows)."""
    statement = select(*_SESSIONS.c).where(_SESSIONS.c.service_date.between(first, last))
    if organization_id is not None:
        statement = statement.where(_SESSIONS.c.organization_id == organization_id)
    if department_id is not None:
        statement = statement.where(_SESSIONS.c.department_id == department_id)
    if practitioner_id is not None:
        statement = statement.where(_SESSIONS.c.practitioner_id == practitioner_id)
    statement = statement.order_by(_SESSIONS.c.starts_at, _SESSIONS.c.id).limit(limit)
    return [dict(row) for row in (await connection.execute(statement)).mappings().all()]


def _released(first: date, last: date, now: datetime) -> Any:
    return and_(BookingSession.service_date.between(first, last), BookingSession.released_at <= now)


async def released_locations(connection: AsyncConnection, first: date, last: date, now: datetime,
                             since: datetime | None) -> list[tuple[int, str, str, str | None]]:
    """(id, name, code, area) of the hospitals with released sessions in the days (changed since `since`)."""
    statement = (select(Organization.id, Organization.name, Organization.code, Organization.area_code)
                 .where(Organization.id.in_(select(BookingSession.organization_id).where(
                     _released(first, last, now))))
                 .order_by(Organization.id))
    if since is not None:
        statement = statement.where(Organization.updated_at > since)
    return [(r[0], r[1], r[2], r[3]) for r in (await connection.execute(statement)).all()]


async def released_schedules(connection: AsyncConnection, first: date, last: date, now: datetime,
                             since: datetime | None) -> list[tuple[int, int, int | None, str, str | None]]:
    """(hospital, department, practitioner, department's name, practitioner's name) with released sessions."""
    statement = (
        select(BookingSession.organization_id, BookingSession.department_id, BookingSession.practitioner_id,
               Department.local_name, Practitioner.name)
        .join(Department, Department.id == BookingSession.department_id)
        .outerjoin(Practitioner, Practitioner.id == BookingSession.practitioner_id)
        .where(_released(first, last, now))
        .group_by(BookingSession.organization_id, BookingSession.department_id, BookingSession.practitioner_id,
                  Department.local_name, Practitioner.name)
        .order_by(BookingSession.organization_id, BookingSession.department_id, BookingSession.practitioner_id))
    if since is not None:
        statement = statement.having(func.max(BookingSession.created_at) > since)
    return [(r[0], r[1], r[2], r[3], r[4]) for r in (await connection.execute(statement)).all()]


async def released_sessions(connection: AsyncConnection, first: date, last: date, now: datetime,
                            since: datetime | None) -> list[dict[str, Any]]:
    """The released sessions of the days (changed since `since`), whole rows."""
    statement = select(*_SESSIONS.c).where(_released(first, last, now)).order_by(_SESSIONS.c.id)
    if since is not None:
        statement = statement.where(_SESSIONS.c.updated_at > since)
    return [dict(row) for row in (await connection.execute(statement)).mappings().all()]
