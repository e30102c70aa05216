"""Code tables loaded by the operator: their generations, their entries, a table replaced whole."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.collection.models import CodeEntry, CodeTableLoad
from cityhealth.collection.repository.dialect import is_postgres, pg_driver
from cityhealth.collection.repository.table_writes import upsert_replace

# session.info key under which stored_records.begin_unit_writes keeps the generations a transaction read.
GENERATIONS_KEY = "cityhealth.collection.code_generations"


async def code_generations(session: AsyncSession) -> dict[str, int]:
    """The generation of each loaded code table (a reload applies to the next transaction's batches)."""
    if is_postgres(session):
        driver = await pg_driver(session)
        return dict(await driver.fetch("SELECT table_id, generation FROM collection_code_tables"))
    return dict((await session.execute(select(CodeTableLoad.table_id, CodeTableLoad.generation))).all())


async def code_entries(session: AsyncSession, table_id: str) -> dict[str, str]:
    rows = await session.execute(select(CodeEntry.code, CodeEntry.name).where(CodeEntry.table_id == table_id))
    return dict(rows.all())


async def replace_code_table(
    session: AsyncSession, table_id: str, entries: dict[str, str], source: str, now: datetime
) -> int:
    session.sync_session.info.pop(GENERATIONS_KEY, None)  # this transaction's later batches see the new table
    await session.execute(delete(CodeEntry).where(CodeEntry.table_id == table_id))
    items = [{"table_id": table_id, "code": code, "name": name} for code, name in entries.items()]
    for start in range(0, len(items), 5000):
        await session.execute(insert(CodeEntry), items[start : start + 5000])
    current = (
        await session.execute(select(CodeTableLoad).where(CodeTableLoad.table_id == table_id))
    ).scalar_one_or_none()
    generation = 1 if current is None else current.generation + 1
    await upsert_replace(
        session,
        CodeTableLoad,
        [{"table_id": table_id, "generation": generation, "entries": len(items), "source": source, "loaded_at": now}],
        ["table_id"],
        ["generation", "entries", "source", "loaded_at"],
    )
    return generation
