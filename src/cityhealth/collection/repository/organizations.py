"""Sending units as collection sees them (the registry's organizations), and the registry's area names."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.registry.models import Area, Organization


@dataclass(frozen=True, slots=True)
class Sender:
    id: int
    code: str
    name: str
    kind: str
    area_code: str | None
    active_to: date | None


_SENDER_COLUMNS = (
    Organization.id,
    Organization.code,
    Organization.name,
    Organization.kind,
    Organization.area_code,
    Organization.active_to,
)


async def organization_by_id(session: AsyncSession, organization_id: int) -> Sender | None:
    row = (await session.execute(select(*_SENDER_COLUMNS).where(Organization.id == organization_id))).first()
    return None if row is None else Sender(*row)


async def organization_by_code(session: AsyncSession, code: str) -> Sender | None:
    row = (await session.execute(select(Organization).where(Organization.code == code))).scalar_one_or_none()
    return None if row is None else _sender(row)


async def existing_org_codes(session: AsyncSession, codes: Iterable[str]) -> set[str]:
    wanted = sorted(set(codes))
    if not wanted:
        return set()
    rows = await session.execute(select(Organization.code).where(Organization.code.in_(wanted)))
    return set(rows.scalars())


async def organizations(session: AsyncSession) -> list[Sender]:
    return [_sender(row) for row in (await session.execute(select(Organization).order_by(Organization.id))).scalars()]


async def area_names(session: AsyncSession) -> dict[str, str]:
    return dict((await session.execute(select(Area.code, Area.name))).all())


def _sender(row: Organization) -> Sender:
    return Sender(
        id=row.id, code=row.code, name=row.name, kind=row.kind, area_code=row.area_code, active_to=row.active_to
    )
