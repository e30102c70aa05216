"""New records sent as rows already encoded for binary COPY (built by the prepare processes, copy_rows.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.collection.copy_rows import COLUMNS, batch_suffix, copy_payload
from cityhealth.collection.repository.dialect import pg_driver


async def copy_new_records(
    session: AsyncSession, organization_id: int, received_at: datetime, job_id: int | None, parts: list[bytes]
) -> None:
    """Insert new records of one unit from their encoded rows (PostgreSQL): the driver only sends the bytes."""
    if not parts:
        return
    driver = await pg_driver(session)
    payload = copy_payload(parts, batch_suffix(organization_id, received_at, job_id))
    # A memoryview: the driver would take bytes for a file name.
    await driver.copy_to_table(
        "collection_records", source=memoryview(payload), columns=list(COLUMNS), format="binary"
    )
