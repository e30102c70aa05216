"""A bulk upload's sealed spool frames (collection/spool.py seals and opens them; this only stores them)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, exists, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.collection.models import RawPayload, SpoolFrame


async def add_frame(session: AsyncSession, spool_id: str, index: int, sealed: bytes, written_at: datetime) -> None:
    await session.execute(
        insert(SpoolFrame).values(spool_id=spool_id, frame_index=index, sealed=sealed, written_at=written_at)
    )


async def frames_after(session: AsyncSession, spool_id: str, after: int, limit: int) -> list[tuple[int, bytes]]:
    """Up to `limit` frames of a spool with an index above `after`, in index order."""
    rows = await session.execute(
        select(SpoolFrame.frame_index, SpoolFrame.sealed)
        .where(SpoolFrame.spool_id == spool_id, SpoolFrame.frame_index > after)
        .order_by(SpoolFrame.frame_index)
        .limit(limit)
    )
    return [(index, sealed) for index, sealed in rows]


async def last_frame_index(session: AsyncSession, spool_id: str) -> int | None:
    """The highest frame index of a spool (every frame before it is full); None when it has none."""
    found = await session.execute(select(func.max(SpoolFrame.frame_index)).where(SpoolFrame.spool_id == spool_id))
    return found.scalar_one()


async def delete_spool(session: AsyncSession, spool_id: str) -> int:
    result = await session.execute(delete(SpoolFrame).where(SpoolFrame.spool_id == spool_id))
    return int(getattr(result, "rowcount", 0) or 0)


async def delete_last_frames(session: AsyncSession, spool_id: str, count: int) -> int:
    """Delete a spool's `count` highest frames; how many there were."""
    last = (
        select(SpoolFrame.frame_index)
        .where(SpoolFrame.spool_id == spool_id)
        .order_by(SpoolFrame.frame_index.desc())
        .limit(count)
        .scalar_subquery()
    )
    result = await session.execute(
        delete(SpoolFrame)
        .where(SpoolFrame.spool_id == spool_id, SpoolFrame.frame_index.in_(last))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def delete_orphan_frames(session: AsyncSession, written_before: datetime) -> int:
    """Frames of spools no raw payload names (an upload refused or cut off mid-stream), older than a cut-off."""
    named = exists().where(RawPayload.spool_id == SpoolFrame.spool_id)
    result = await session.execute(
        delete(SpoolFrame).where(SpoolFrame.written_at < written_before, ~named).execution_options(
            synchronize_session=False
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
