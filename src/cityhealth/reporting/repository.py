"""Every query of the reporting room's own tables (the months being loaded, the publication profiles)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.reporting.models import MonthLoad, PublicationProfile


async def unfinished_loads(session: AsyncSession) -> list[MonthLoad]:
    """Loads not completed, oldest month first."""
    return list(await session.scalars(
        select(MonthLoad).where(MonthLoad.completed_at.is_(None)).order_by(MonthLoad.month)))


async def publication_profile(session: AsyncSession, region_code: str) -> PublicationProfile | None:
    return await session.get(PublicationProfile, region_code)


async def publication_profile_for_update(session: AsyncSession, region_code: str) -> PublicationProfile | None:
    """The profile, locked until the transaction ends (two editors saving at once: one waits for the other)."""
    return await session.scalar(
        select(PublicationProfile).where(PublicationProfile.region_code == region_code).with_for_update())
