"""Bulk jobs: a job by its dedupe key or locked for update, its status, the unfinished ones, a job's rejected rows."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.collection.models import Job, JobRejection
from cityhealth.collection.repository.dialect import is_postgres


async def job_by_dedupe_key(session: AsyncSession, organization_id: int, dedupe_key: str) -> Job | None:
    return (
        await session.execute(select(Job).where(Job.organization_id == organization_id, Job.dedupe_key == dedupe_key))
    ).scalar_one_or_none()


async def job_for_update(session: AsyncSession, job_id: int) -> Job | None:
    statement = select(Job).where(Job.id == job_id)
    if is_postgres(session):
        statement = statement.with_for_update()
    return (await session.execute(statement)).scalar_one_or_none()


async def job_status(session: AsyncSession, job_id: int) -> str | None:
    status: str | None = (await session.execute(select(Job.status).where(Job.id == job_id))).scalar_one_or_none()
    return status


async def unfinished_jobs(session: AsyncSession) -> list[tuple[int, int]]:
    """(id, bytes received) of the jobs a previous process left queued or running."""
    rows = await session.execute(
        select(Job.id, Job.bytes_received).where(Job.status.in_(("queued", "running"))).order_by(Job.id)
    )
    return [(job_id, size) for job_id, size in rows]


async def job_rejections(session: AsyncSession, job_id: int, after: int, limit: int) -> list[JobRejection]:
    rows = await session.execute(
        select(JobRejection)
        .where(JobRejection.job_id == job_id, JobRejection.position > after)
        .order_by(JobRejection.position)
        .limit(limit)
    )
    return list(rows.scalars())


async def delete_job_rejections(
    session: AsyncSession, organization_id: int, job_id: int, positions: Sequence[int]
) -> None:
    for start in range(0, len(positions), 500):
        await session.execute(
            delete(JobRejection).where(
                JobRejection.organization_id == organization_id,
                JobRejection.job_id == job_id,
                JobRejection.position.in_(positions[start : start + 500]),
            )
        )
