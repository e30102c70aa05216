"""Stored rejected rows across all jobs, page by page (for rewrites that walk every one)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.collection.models import JobRejection


async def rejections_after(session: AsyncSession, after: tuple[int, int], limit: int) -> list[JobRejection]:
    """Up to `limit` rejected rows after (job id, position), in that order."""
    job_id, position = after
    rows = await session.execute(
        select(JobRejection)
        .where(or_(JobRejection.job_id > job_id,
                   and_(JobRejection.job_id == job_id, JobRejection.position > position)))
        .order_by(JobRejection.job_id, JobRejection.position)
        .limit(limit)
    )
    return list(rows.scalars())


async def rewrite_rejection(session: AsyncSession, rejection: JobRejection, *, record_id: str | None,
                            errors: list[dict[str, Any]], row: dict[str, Any] | None) -> None:
    """Replace one rejected row's id, errors and row; one a re-run deleted meanwhile is simply not updated."""
    await session.execute(
        update(JobRejection)
        .where(JobRejection.organization_id == rejection.organization_id, JobRejection.job_id == rejection.job_id,
               JobRejection.position == rejection.position)
        .values(record_id=record_id, errors=errors, row=row)
        .execution_options(synchronize_session=False)
    )
