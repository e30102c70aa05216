"""Queries of family links (a resident booking for a family member) and of the residents they join."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from cityhealth.booking.models import FamilyLink
from cityhealth.registry.models import Resident

_LINKS = FamilyLink.__table__


async def resident_by_id_hash(session: AsyncSession, id_number_hash: str) -> Resident | None:
    found: Resident | None = (await session.execute(
        select(Resident).where(Resident.id_number_hash == id_number_hash))).scalar_one_or_none()
    return found


async def residents(session: AsyncSession, resident_ids: Iterable[int]) -> dict[int, Resident]:
    ids = set(resident_ids)
    if not ids:
        return {}
    rows = await session.execute(select(Resident).where(Resident.id.in_(ids)))
    return {row.id: row for row in rows.scalars()}


async def link(session: AsyncSession, link_id: int, *, lock: bool = False) -> FamilyLink | None:
    statement = select(FamilyLink).where(FamilyLink.id == link_id)
    if lock:
        statement = statement.with_for_update()
    found: FamilyLink | None = (await session.execute(statement)).scalar_one_or_none()
    return found


async def link_of_pair(session: AsyncSession, manager_id: int, member_id: int) -> FamilyLink | None:
    found: FamilyLink | None = (await session.execute(select(FamilyLink).where(
        FamilyLink.manager_resident_id == manager_id, FamilyLink.member_resident_id == member_id)
        .with_for_update())).scalar_one_or_none()
    return found


async def links_of(session: AsyncSession, resident_id: int) -> list[FamilyLink]:
    """The links where the resident is the manager or the member, the oldest first."""
    rows = await session.execute(select(FamilyLink).where(or_(
        FamilyLink.manager_resident_id == resident_id, FamilyLink.member_resident_id == resident_id))
        .order_by(FamilyLink.id))
    return list(rows.scalars())


async def link_row(connection: AsyncConnection | AsyncSession, link_id: int) -> dict[str, Any] | None:
    """The link's manager, member, status and consent, and the member's birth date, on a plain connection or
    in a session (a Core read; in a session the link is share-locked, so a revocation waits for the write)."""
    statement = (select(_LINKS.c.manager_resident_id, _LINKS.c.member_resident_id, _LINKS.c.status,
                        _LINKS.c.consent_basis, Resident.birth_date.label("member_birth_date"))
                 .join(Resident, Resident.id == _LINKS.c.member_resident_id).where(_LINKS.c.id == link_id))
    if isinstance(connection, AsyncSession):
        statement = statement.with_for_update(read=True, of=_LINKS)
    row = (await connection.execute(statement)).mappings().first()
    return None if row is None else dict(row)
