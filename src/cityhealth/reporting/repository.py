"""Every query of the reporting room's own tables (the months being loaded, the publication profiles)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.reporting.models import BulletinEdition, BulletinIssue, MonthLoad, PublicationProfile


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


async def last_published_issue(session: AsyncSession, region_code: str) -> BulletinIssue | None:
    """The region's published issue with the highest total number (its latest revision)."""
    return await session.scalar(
        select(BulletinIssue).where(BulletinIssue.region_code == region_code, BulletinIssue.status == "published")
        .order_by(BulletinIssue.total_number.desc(), BulletinIssue.revision.desc()).limit(1))


async def issue_for_update(session: AsyncSession, issue_id: int) -> BulletinIssue | None:
    return await session.scalar(select(BulletinIssue).where(BulletinIssue.id == issue_id).with_for_update())


async def issues_of_month(session: AsyncSession, region_code: str | None, month: str) -> list[BulletinIssue]:
    """Every issue and revision of a region's month (of any region: None), the latest revision first."""
    query = select(BulletinIssue).where(BulletinIssue.month == month)
    if region_code is not None:
        query = query.where(BulletinIssue.region_code == region_code)
    return list(await session.scalars(query.order_by(BulletinIssue.revision.desc(), BulletinIssue.id.desc())))


async def published_issues(session: AsyncSession, region_code: str | None = None) -> list[BulletinIssue]:
    """Published issues, newest first (every revision: the caller keeps the latest of each)."""
    query = select(BulletinIssue).where(BulletinIssue.status == "published")
    if region_code is not None:
        query = query.where(BulletinIssue.region_code == region_code)
    return list(await session.scalars(
        query.order_by(BulletinIssue.total_number.desc(), BulletinIssue.revision.desc())))


async def editions_of(session: AsyncSession, issue_id: int) -> list[BulletinEdition]:
    return list(await session.scalars(
        select(BulletinEdition).where(BulletinEdition.issue_id == issue_id).order_by(BulletinEdition.format)))


async def edition(session: AsyncSession, issue_id: int, fmt: str) -> BulletinEdition | None:
    return await session.get(BulletinEdition, (issue_id, fmt))


async def draft_issues(session: AsyncSession) -> list[BulletinIssue]:
    """Issues and corrections not yet published, newest first."""
    return list(await session.scalars(
        select(BulletinIssue).where(BulletinIssue.status == "draft").order_by(BulletinIssue.id.desc())))
