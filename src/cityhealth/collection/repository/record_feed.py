"""The stored records in the order they were received, for a reader that follows them (the records room's
linker): a keyset page after (received_at, organization, form, record id), on the index of the same columns."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.collection.models import Record


async def records_received_after(session: AsyncSession, after: tuple[datetime, int, str, str],
                                 forms: Collection[str], limit: int) -> list[Any]:
    """The rows (Core, no objects: a page is a thousand of them) with the columns a reader follows."""
    key = tuple_(Record.received_at, Record.organization_id, Record.form, Record.record_id)
    statement = (select(Record.organization_id, Record.form, Record.record_id, Record.version, Record.action,
                        Record.event_time, Record.received_at, Record.fields)
                 .where(key > tuple_(*after), Record.form.in_(sorted(forms)))
                 .order_by(Record.received_at, Record.organization_id, Record.form, Record.record_id).limit(limit))
    return list(await session.execute(statement))
