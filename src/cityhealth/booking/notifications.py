"""The patient-notification outbox and its dispatcher: rows written in the transaction that causes them
(suspension, waitlist offer, booking confirmed or cancelled, the day-before reminder), sent afterwards
through an SMS gateway, at least once.

Sending is a task of the job queue, deferred in that same transaction: a message goes out moments after
its cause commits, with no one running a command; the periodic dispatch (jobs.py) is the safety net for a
task lost with its worker. Whether a message is still due is decided by the clock at the moment of
sending: an offer whose hold has ended, or a reminder of a booking no longer booked, is never sent.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth import queue as task_queue
from cityhealth.booking import messages_links, messages_repository
from cityhealth.clock import Clock
from cityhealth.db.engine import Database
from cityhealth.registry.identifiers import mask_phone
from cityhealth.registry.protection import PHONE, cipher_for
from cityhealth.security.audit import Action, record
from cityhealth.security.crypto import FieldCipher

logger = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
SEND_TASK = "booking.send_notifications"
SEND_ACTOR = "job:booking.send_notifications"
SMS_GATEWAY = "booking.sms_gateway"
_DEFERRED = "cityhealth.booking.send_deferred"


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


async def send_soon(tx: AsyncSession) -> None:
    """Defer the sending task in the caller's transaction (once per transaction)."""
    transaction = tx.sync_session.get_transaction()
    if transaction is not None and tx.sync_session.info.get(_DEFERRED) is transaction:
        return
    await task_queue.defer(tx, SEND_TASK, outbox="sms")
    tx.sync_session.info[_DEFERRED] = transaction


async def queue(tx: AsyncSession, *, resident_id: int, booking_id: int | None, kind: str, message: str,
                        now: datetime) -> None:
    """Add a message to the outbox, in the caller's transaction (once per booking and kind), and send it soon."""
    await messages_repository.add(tx, {"resident_id": resident_id, "booking_id": booking_id, "kind": kind,
                                       "message": message, "status": "pending", "attempts": 0, "created_at": now})
    await send_soon(tx)



@dataclass(frozen=True)
class DispatchResult:
    sent: int
    failed: int
    no_phone: int
    lapsed: int = 0


def still_due(row: Any, now: datetime) -> bool:
    """An offer only while its hold runs; a reminder only while its booking stands and has not begun."""
    if row.kind == "waitlist_offer":
        return row.booking_status == "held" and row.hold_expires_at is not None and row.hold_expires_at > now
    if row.kind == "booking_reminder":
        return row.booking_status == "booked" and row.starts_at is not None and row.starts_at > now
    return True


async def dispatch(database: Database, clock: Clock, cipher: FieldCipher, gateway: SmsGateway, *,
                   limit: int = 200, link_base: str = "") -> DispatchResult:
    """Send up to `limit` pending messages. Rows are locked (SKIP LOCKED) so dispatchers can run side by side.
    `link_base`: the platform's public address, for a booking message's calendar link (messages_links.py)."""
    sent = failed = no_phone = lapsed = 0
    async with database.transaction() as tx:
        rows = await messages_repository.pending(tx, limit, skip_locked=not database.is_sqlite)
        for row in rows:
            now = clock.now()  # each message's own moment: a slow gateway must not send a lapsed offer
            if not still_due(row, now):
                values: dict[str, object] = {"status": "lapsed"}
                lapsed += 1
            elif row.phone_enc is None:
                values = {"status": "no_phone"}
                no_phone += 1
            else:
                # The phone number is read (decrypted) to send the message: an access of personal data.
                record(tx, clock, None, Action.READ, "resident_phone", resource_id=row.id,
                       resident_ids=[row.resident_id], detail=f"sms {row.kind}", actor=SEND_ACTOR)
                try:
                    await gateway.send(cipher.decrypt(PHONE, row.phone_enc), messages_links.with_link(
                        row, cipher, link_base), reference=str(row.id))
                    values = {"status": "sent", "sent_at": now, "attempts": row.attempts + 1}
                    sent += 1
                except Exception as exc:  # a gateway failure must not lose the other messages
                    logger.warning("sms send failed", extra={"notification_id": row.id,
                                                             "error_type": type(exc).__name__})
                    values = {"attempts": row.attempts + 1, "last_error": type(exc).__name__[:255],
                              "status": "failed" if row.attempts + 1 >= MAX_ATTEMPTS else "pending"}
                    failed += 1
            await messages_repository.set_message(tx, row.id, values)
    return DispatchResult(sent=sent, failed=failed, no_phone=no_phone, lapsed=lapsed)


async def dispatch_with(runtime: task_queue.Runtime) -> DispatchResult:
    """Send the pending messages through the process's gateway (development: a file)."""
    gateway: SmsGateway = runtime.resource(
        SMS_GATEWAY, lambda: FileSmsSink(runtime.settings.var_dir / "outbox" / "sms.ndjson"))
    cipher = runtime.resource("booking.cipher", lambda: cipher_for(runtime.settings))
    return await dispatch(runtime.database, runtime.clock, cipher, gateway,
                          link_base=runtime.settings.public_base_url)


@task_queue.task(SEND_TASK, lock_by="outbox")
async def send_pending(runtime: task_queue.Runtime, outbox: str) -> None:
    """The sending task: one at a time per outbox (its lock); a run finds every message pending by then."""
    # On SQLite the runner starts it from the commit of the request that deferred it, in that request's
    # context: its reads and audit events are the job's own, not the request's (request id, client).
    await asyncio.create_task(dispatch_with(runtime), context=contextvars.Context())


@task_queue.recover(SEND_TASK)
async def unsent(runtime: task_queue.Runtime) -> list[dict[str, Any]]:
    """SQLite: messages still pending when the server starts are sent then."""
    async with runtime.database.transaction() as tx:
        return [{"outbox": "sms"}] if await messages_repository.any_pending(tx) else []
