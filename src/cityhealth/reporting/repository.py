"""Every query of the reporting room's own table (the months being loaded)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.reporting.models import MonthLoad


async def unfinished_loads(session: AsyncSession) -> list[MonthLoad]:
    """Loads not completed, oldest month first."""
    return list(await session.scalars(
        select(MonthLoad).where(MonthLoad.completed_at.is_(None)).order_by(MonthLoad.month)))
