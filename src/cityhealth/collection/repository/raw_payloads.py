"""Raw payloads kept as received (compressed and encrypted by the caller), and those due for purging."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.collection.models import RawPayload
from cityhealth.collection.repository.dialect import is_postgres, pg_driver, sqlite_datetime


async def add_raw_payload(
    session: AsyncSession,
    organization_id: int,
    received_at: datetime,
    content_type: str,
    body: bytes,
    bytes_received: int,
) -> None:
    """Keep a real-time request's body (compressed and encrypted by the caller)."""
    if is_postgres(session):
        driver = await pg_driver(session)
        await driver.execute(
            "INSERT INTO collection_raw_payloads (organization_id, received_at, content_type, body, bytes_received) "
            "VALUES ($1, $2, $3, $4, $5)",
            organization_id,
            received_at,
            content_type,
            body,
            bytes_received,
        )
        return
    connection = await session.connection()
    await connection.exec_driver_sql(
        "INSERT INTO collection_raw_payloads (organization_id, received_at, content_type, body, bytes_received) "
        "VALUES (?, ?, ?, ?, ?)",
        (organization_id, sqlite_datetime(received_at), content_type, body, bytes_received),
    )


async def expired_payloads(session: AsyncSession, before: datetime) -> list[RawPayload]:
    rows = await session.execute(
        select(RawPayload).where(RawPayload.received_at < before, RawPayload.purged_at.is_(None))
    )
    return list(rows.scalars())


async def job_payload(session: AsyncSession, job_id: int) -> RawPayload | None:
    return (await session.execute(select(RawPayload).where(RawPayload.job_id == job_id))).scalar_one_or_none()
