"""Every query of the medical e-map: facility profiles, their services and hours, and the `near` search's box."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import and_, delete, exists, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.registry.geo import BoundingBox
from cityhealth.registry.models import Department, FacilityHours, FacilityProfile, FacilityService, Organization


async def get_profile(session: AsyncSession, organization_id: int, *, lock: bool = False) -> FacilityProfile | None:
    """The profile; `lock`: its row locked until the transaction ends (PostgreSQL; SQLite's writers are serial),
    so two writers of one profile replace its services and hours one after the other."""
    statement = select(FacilityProfile).where(FacilityProfile.organization_id == organization_id)
    return await session.scalar(statement.with_for_update() if lock else statement)


async def services_of(session: AsyncSession, organization_ids: Collection[int]) -> dict[int, list[str]]:
    """Each organization's services, sorted (absent: none)."""
    if not organization_ids:
        return {}
    rows = await session.execute(select(FacilityService.organization_id, FacilityService.service)
                                 .where(FacilityService.organization_id.in_(organization_ids))
                                 .order_by(FacilityService.organization_id, FacilityService.service))
    found: dict[int, list[str]] = {}
    for organization_id, service in rows:
        found.setdefault(organization_id, []).append(service)
    return found


async def hours_of(session: AsyncSession, organization_ids: Collection[int]) -> dict[int, list[tuple[int, int, int]]]:
    """Each organization's opening intervals (weekday, opens_min, closes_min), in order."""
    if not organization_ids:
        return {}
    rows = await session.execute(
        select(FacilityHours.organization_id, FacilityHours.weekday, FacilityHours.opens_min,
               FacilityHours.closes_min)
        .where(FacilityHours.organization_id.in_(organization_ids))
        .order_by(FacilityHours.organization_id, FacilityHours.weekday, FacilityHours.opens_min))
    found: dict[int, list[tuple[int, int, int]]] = {}
    for organization_id, weekday, opens, closes in rows:
        found.setdefault(organization_id, []).append((weekday, opens, closes))
    return found


async def replace_services(session: AsyncSession, organization_id: int, services: Collection[str]) -> None:
    await session.execute(delete(FacilityService).where(FacilityService.organization_id == organization_id))
    if services:
        await session.execute(insert(FacilityService), [
            {"organization_id": organization_id, "service": service} for service in sorted(services)])


async def replace_hours(session: AsyncSession, organization_id: int,
                        intervals: Collection[tuple[int, int, int]]) -> None:
    await session.execute(delete(FacilityHours).where(FacilityHours.organization_id == organization_id))
    if intervals:
        await session.execute(insert(FacilityHours), [
            {"organization_id": organization_id, "weekday": weekday, "opens_min": opens, "closes_min": closes}
            for weekday, opens, closes in sorted(intervals)])


async def active_department_names(session: AsyncSession, organization_ids: Collection[int]) -> dict[int, list[str]]:
    """Each organization's active departments' local names, in id order."""
    if not organization_ids:
        return {}
    rows = await session.execute(select(Department.organization_id, Department.local_name)
                                 .where(Department.organization_id.in_(organization_ids),
                                        Department.is_active.is_(True))
                                 .order_by(Department.organization_id, Department.id))
    found: dict[int, list[str]] = {}
    for organization_id, name in rows:
        found.setdefault(organization_id, []).append(name)
    return found


@dataclass(frozen=True)
class Candidate:
    """A facility inside the search box: what the exact distance needs, nothing more (a wide search reads
    thousands; what the answer shows is read for the page's facilities only)."""

    organization_id: int
    latitude: float
    longitude: float


def _in_box(box: BoundingBox) -> Any:
    band = FacilityProfile.latitude.between(box.min_lat, box.max_lat)
    if not box.longitudes:
        return band
    return and_(band, or_(*(FacilityProfile.longitude.between(low, high) for low, high in box.longitudes)))


async def candidates(session: AsyncSession, box: BoundingBox, *, active_on: date, service: str | None,
                     open_at: tuple[int, int] | None) -> list[Candidate]:
    """The active organizations with a profile inside `box` (a superset of the search circle's), offering
    `service` and open at (weekday, minute) `open_at` where those are given."""
    statement = (
        select(FacilityProfile.organization_id, FacilityProfile.latitude, FacilityProfile.longitude)
        .join(Organization, Organization.id == FacilityProfile.organization_id)
        .where(_in_box(box), Organization.active_from <= active_on,
               or_(Organization.active_to.is_(None), Organization.active_to > active_on)))
    if service is not None:
        statement = statement.where(exists().where(FacilityService.organization_id == FacilityProfile.organization_id,
                                                   FacilityService.service == service))
    if open_at is not None:
        weekday, minute = open_at
        statement = statement.where(exists().where(
            FacilityHours.organization_id == FacilityProfile.organization_id, FacilityHours.weekday == weekday,
            FacilityHours.opens_min <= minute, FacilityHours.closes_min > minute))
    connection = await session.connection()  # Core rows: a wide search's thousands cost no ORM objects
    return [Candidate(*row) for row in (await connection.execute(statement)).all()]


async def facility_details(session: AsyncSession, organization_ids: Collection[int]) -> dict[int, Any]:
    """What the answer shows of each facility (organization columns and the profile's phone), by id."""
    if not organization_ids:
        return {}
    rows = (await session.execute(
        select(FacilityProfile.organization_id, FacilityProfile.phone, Organization.name, Organization.short_name,
               Organization.kind, Organization.level, Organization.address_line, Organization.address_district,
               Organization.address_city, Organization.booking_phone)
        .join(Organization, Organization.id == FacilityProfile.organization_id)
        .where(FacilityProfile.organization_id.in_(organization_ids)))).mappings().all()
    return {row["organization_id"]: row for row in rows}
