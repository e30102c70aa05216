"""Raw payloads kept as received (compressed and encrypted by the caller), and those due for purging."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.collection.models import RawPayload
from cityhealth.collection.repository.dialect import is_postgres, pg_driver, sqlite_datetime

# session.info key: the raw payloads queued in this transaction and not yet written.
_QUEUED = "cityhealth.collection.raw_payloads"
RawRow = tuple[int, datetime, str, bytes, int]


def queue_raw_payload(
    session: AsyncSession, organization_id: int, received_at: datetime, content_type: str, body: bytes,
    bytes_received: int,
) -> None:
    """Queue a real-time request's body (compressed and encrypted by the caller) to be written with the batch's
    counters (one round trip for both), or by write_queued() if no counters statement took it."""
    session.sync_session.info.setdefault(_QUEUED, []).append(
        (organization_id, received_at, content_type, body, bytes_received))


def take_queued(session: AsyncSession) -> list[RawRow]:
    """The raw payloads queued and not yet written; the caller writes them."""
    rows: list[RawRow] = session.sync_session.info.pop(_QUEUED, [])
    return rows


async def write_queued(session: AsyncSession) -> None:
    """Write the raw payloads still queued (none when the counters' statement took them)."""
    rows = take_queued(session)
    if not rows:
        return
    if is_postgres(session):
        driver = await pg_driver(session)
        await driver.executemany(
            "INSERT INTO collection_raw_payloads (organization_id, received_at, content_type, body, bytes_received) "
            "VALUES ($1, $2, $3, $4, $5)",
            rows,
        )
        return
    connection = await session.connection()
    await connection.exec_driver_sql(
        "INSERT INTO collection_raw_payloads (organization_id, received_at, content_type, body, bytes_received) "
        "VALUES (?, ?, ?, ?, ?)",
        [(org, sqlite_datetime(at), kind, body, size) for org, at, kind, body, size in rows],
    )


async def add_raw_payload(
    session: AsyncSession,
    organization_id: int,
    received_at: datetime,
    content_type: str,
    body: bytes,
    bytes_received: int,
) -> None:
    """Keep a request's body at once (compressed and encrypted by the caller)."""
    queue_raw_payload(session, organization_id, received_at, content_type, body, bytes_received)
    await write_queued(session)


async def expired_payloads(session: AsyncSession, before: datetime) -> list[RawPayload]:
    rows = await session.execute(
        select(RawPayload).where(RawPayload.received_at < before, RawPayload.purged_at.is_(None))
    )
    return list(rows.scalars())


async def job_payload(session: AsyncSession, job_id: int) -> RawPayload | None:
    return (await session.execute(select(RawPayload).where(RawPayload.job_id == job_id))).scalar_one_or_none()
