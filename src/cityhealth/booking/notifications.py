"""The patient-notification outbox and its dispatcher: rows written in the transaction that causes them
(suspension, waitlist offer), sent afterwards through an SMS gateway, at least once."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking.models import Notification
from cityhealth.clock import Clock
from cityhealth.db.engine import Database
from cityhealth.registry.identifiers import mask_phone
from cityhealth.registry.models import Resident
from cityhealth.registry.protection import PHONE
from cityhealth.security.crypto import FieldCipher

logger = logging.getLogger(__name__)
MAX_ATTEMPTS = 5


class SmsGateway(Protocol):
    """An SMS provider. `reference` is the outbox row id, for the provider's de-duplication."""

    async def send(self, phone: str, message: str, *, reference: str) -> None: ...


class FileSmsSink:
    """Development gateway: one JSON line per message in var/outbox/sms.ndjson, the number masked
    (the file is read like a log, and a phone number never goes into a log)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def send(self, phone: str, message: str, *, reference: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"reference": reference, "to": mask_phone(phone), "message": message},
                          ensure_ascii=False)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")


async def queue(tx: AsyncSession, *, resident_id: int, booking_id: int | None, kind: str, message: str,
                now: datetime) -> None:
    """Add a message to the outbox, in the caller's transaction."""
    await tx.execute(insert(Notification).values(
        resident_id=resident_id, booking_id=booking_id, kind=kind, message=message, status="pending",
        attempts=0, created_at=now))


@dataclass(frozen=True)
class DispatchResult:
    sent: int
    failed: int
    no_phone: int


async def dispatch(database: Database, clock: Clock, cipher: FieldCipher, gateway: SmsGateway, *,
                   limit: int = 200) -> DispatchResult:
    """Send up to `limit` pending messages. Rows are locked (SKIP LOCKED) so dispatchers can run side by side."""
    sent = failed = no_phone = 0
    async with database.transaction() as tx:
        statement = (select(Notification.id, Notification.message, Notification.attempts, Resident.phone_enc)
                     .join(Resident, Resident.id == Notification.resident_id)
                     .where(Notification.status == "pending").order_by(Notification.id).limit(limit))
        if not database.is_sqlite:
            statement = statement.with_for_update(of=Notification, skip_locked=True)
        rows = (await tx.execute(statement)).all()
        for notification_id, message, attempts, phone_enc in rows:
            now = clock.now()
            if phone_enc is None:
                values: dict[str, object] = {"status": "no_phone"}
                no_phone += 1
            else:
                try:
                    await gateway.send(cipher.decrypt(PHONE, phone_enc), message, reference=str(notification_id))
                    values = {"status": "sent", "sent_at": now, "attempts": attempts + 1}
                    sent += 1
                except Exception as exc:  # a gateway failure must not lose the other messages
                    logger.warning("sms send failed", extra={"notification_id": notification_id,
                                                             "error_type": type(exc).__name__})
                    values = {"attempts": attempts + 1, "last_error": type(exc).__name__[:255],
                              "status": "failed" if attempts + 1 >= MAX_ATTEMPTS else "pending"}
                    failed += 1
            await tx.execute(update(Notification).where(Notification.id == notification_id).values(**values))
    return DispatchResult(sent=sent, failed=failed, no_phone=no_phone)
