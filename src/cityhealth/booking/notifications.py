"""The patient-notification outbox and its dispatcher: rows written in the transaction that causes them
(suspension, waitlist offer, booking confirmed or cancelled, the day-before reminder), sent afterwards
through an SMS gateway, at least once.

Sending is a task of the job queue, deferred in that same transaction: a message goes out moments after
its cause commits, with no one running a command; the periodic dispatch (jobs.py) is the safety net for a
task lost with its worker. Whether a message is still due is decided by the clock at the moment of
sending: an offer whose hold has ended, or a reminder of a booking no longer booked, is never sent.

A message about a booking carries the appointment's calendar file where its channel can carry one (an app's
message centre, e-mail: an `AttachingGateway`): one .ics attachment per message, made when it is sent, from
the booking as it then stands. An SMS cannot: it gets the text, ending with a link to that file.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth import queue as task_queue
from cityhealth.booking import messages_calendar, messages_links, messages_repository
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
# The messages about a booking: each carries its calendar file where the channel can carry a file.
ATTACHED_KINDS = frozenset({"booking_confirmed", "booking_cancelled", "booking_rescheduled", "booking_reminder"})


class SmsGateway(Protocol):
    """An SMS provider. `reference` is the outbox row id, for the provider's de-duplication."""

    async def send(self, phone: str, message: str, *, reference: str) -> None: ...


@dataclass(frozen=True)
class Attachment:
    filename: str
    media_type: str
    content: bytes


@runtime_checkable
class AttachingGateway(Protocol):
    """A channel that carries a file with the text (an app's message centre, e-mail), addressed like an SMS by
    the resident's phone number. `carries_attachments` False makes it an SMS gateway."""

    carries_attachments: bool

    async def send(self, phone: str, message: str, *, reference: str,
                   attachment: Attachment | None = None) -> None: ...


Gateway = SmsGateway | AttachingGateway


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


async def _attachments(tx: AsyncSession, clock: Clock, rows: list[Any], link_base: str) -> dict[int, Attachment]:
    """The calendar file of each booking message among `rows` (a reschedule's also cancels the booking it
    replaced), by outbox row id, from one read; unaudited (the export is audited as each is sent)."""
    booking_rows = [row for row in rows if row.kind in ATTACHED_KINDS and row.booking_id is not None]
    found = await messages_repository.calendar_bookings(
        tx, {row.booking_id for row in booking_rows},
        {row.booking_id for row in booking_rows if row.kind == "booking_rescheduled"})
    stamp, host = clock.now(), messages_calendar.host_of(link_base)
    events: dict[int, messages_calendar.Event] = {}
    replaced: dict[int, list[messages_calendar.Event]] = {}  # by the id of the booking that replaced them
    for booking, hospital, department in found:
        events[booking.id] = messages_calendar.booking_event(booking, hospital, department, stamp, host)
        if booking.rescheduled_to_id is not None:
            replaced.setdefault(booking.rescheduled_to_id, []).append(events[booking.id])
    files: dict[int, Attachment] = {}
    for row in booking_rows:
        moved = replaced.get(row.booking_id, []) if row.kind == "booking_rescheduled" else []
        body = messages_calendar.calendar([*moved, events[row.booking_id]])
        files[row.id] = Attachment(messages_calendar.file_name(row.booking_id), messages_calendar.MEDIA_TYPE,
                                   body.encode("utf-8"))
    return files


async def dispatch(database: Database, clock: Clock, cipher: FieldCipher, gateway: Gateway, *,
                   limit: int = 200, link_base: str = "") -> DispatchResult:
    """Send up to `limit` pending messages. Rows are locked (SKIP LOCKED) so dispatchers can run side by side.
    `link_base`: the platform's public address, for a booking message's calendar link (messages_links.py) and
    its calendar file's event ids."""
    sent = failed = no_phone = lapsed = 0
    attaching = gateway if isinstance(gateway, AttachingGateway) and gateway.carries_attachments else None
    async with database.transaction() as tx:
        rows = await messages_repository.pending(tx, limit, skip_locked=not database.is_sqlite)
        files = {} if attaching is None else await _attachments(tx, clock, rows, link_base)
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
                phone = cipher.decrypt(PHONE, row.phone_enc)
                attachment = files.get(row.id)
                if attachment is not None:  # the appointment leaves the platform with it: an export
                    record(tx, clock, None, Action.EXPORT, "booking", resource_id=row.booking_id,
                           resident_ids=[row.resident_id], detail=f"calendar attachment of {row.kind}",
                           actor=SEND_ACTOR)
                try:
                    if attaching is not None:  # the file goes with the text: no link needed
                        await attaching.send(phone, str(row.message), reference=str(row.id), attachment=attachment)
                    else:
                        await gateway.send(phone, messages_links.with_link(row, cipher, link_base),
                                           reference=str(row.id))
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
    gateway: Gateway = runtime.resource(
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
