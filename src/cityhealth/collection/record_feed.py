"""The stored records as another room follows them (re-exported by collection.service): the current version of
each, in the order received, with its personal fields opened for a use case that needs them in memory only
(patient linkage compares ID and phone numbers through the master index's keyed hashes, and keeps neither)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.collection.repository import record_feed
from cityhealth.security.crypto import FieldCipher


@dataclass(frozen=True)
class StoredRecord:
    organization_id: int
    form: str
    record_id: str
    version: int
    action: int  # 1 new, 2 amended, 3 revoked
    event_time: datetime
    received_at: datetime
    fields: dict[str, Any]

    @property
    def key(self) -> tuple[datetime, int, str, str]:
        """Where a reader that has taken this record goes on from."""
        return (self.received_at, self.organization_id, self.form, self.record_id)


async def records_received_after(session: AsyncSession, cipher: FieldCipher, after: tuple[datetime, int, str, str],
                                 forms: Collection[str], limit: int) -> list[StoredRecord]:
    """The next `limit` stored records of `forms` after the key `after`, personal fields decrypted."""
    rows = await record_feed.records_received_after(session, after, forms, limit)
    return [StoredRecord(row.organization_id, row.form, row.record_id, row.version, row.action, row.event_time,
                         row.received_at, _opened(cipher, row.fields)) for row in rows]


def _opened(cipher: FieldCipher, fields: dict[str, Any]) -> dict[str, Any]:
    opened = dict(fields)
    for name, value in fields.items():
        if isinstance(value, dict) and "enc" in value:  # sealed by the collector (prepare.Collector.sealed)
            opened[name] = cipher.decrypt(f"collection.{name}", value["enc"])
    return opened
