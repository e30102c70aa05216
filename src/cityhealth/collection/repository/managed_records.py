"""Public-health managed records (health record numbers under a program): which are held, and where."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.collection.models import ManagedRecord


async def managed_areas(
    session: AsyncSession, organization_id: int, program: str, numbers: Sequence[str]
) -> dict[str, tuple[str, int]]:
    """The managed numbers among these, with the area and month each was counted in."""
    found: dict[str, tuple[str, int]] = {}
    for start in range(0, len(numbers), 500):
        rows = await session.execute(
            select(ManagedRecord.health_record_no, ManagedRecord.area_code, ManagedRecord.month).where(
                ManagedRecord.organization_id == organization_id,
                ManagedRecord.program == program,
                ManagedRecord.health_record_no.in_(numbers[start : start + 500]),
            )
        )
        for number, area, month in rows:
            found[number] = (area, month)
    return found
