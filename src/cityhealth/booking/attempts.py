"""One booking attempt after its pre-check: its outcome types, its refusals, and its decision on its own.

The group commit (`group_commit.py`) decides a session's queued attempts together; an attempt it cannot
decide that way (its batch hit a database error) is decided here, in a transaction of its own, by the
same rules in the same order.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking import idempotency, repository
from cityhealth.booking.availability import Claim, quota_exhausted, sold_out
from cityhealth.booking.channels import Caller, resident_not_found
from cityhealth.booking.idempotency import IdempotencyContext
from cityhealth.booking.models import Booking
from cityhealth.booking.release import ReleaseRules
from cityhealth.booking.schemas import BookingRead
from cityhealth.clock import Clock, business_date
from cityhealth.db.engine import Database
from cityhealth.errors import Conflict, DomainError, Forbidden, NotFound
from cityhealth.registry.identifiers import ResidentId
from cityhealth.registry.protection import ID_NUMBER
from cityhealth.security.audit import Action, Outcome, record, record_now
from cityhealth.security.crypto import FieldCipher
from cityhealth.security.principals import Principal

RESOURCE = "booking"


@dataclass(frozen=True)
class WriteResult:
    """A booking write's HTTP outcome: what was stored under the Idempotency-Key, or its replay."""

    status: int
    body: str
    replayed: bool = False


_AUDIT_SETTLED = "booking_audit_settled"


def settle_audit(error: DomainError) -> DomainError:
    """Mark a refusal whose audit is taken care of: written already, or due none (no personal data read)."""
    setattr(error, _AUDIT_SETTLED, True)
    return error


def audit_settled(error: Exception) -> bool:
    return bool(getattr(error, _AUDIT_SETTLED, False))


class Refused(Exception):
    """A refusal after the resident was identified: audited (in its own transaction) before it is raised."""

    def __init__(self, resident_id: int, error: DomainError) -> None:
        super().__init__(error.message)
        self.resident_id = resident_id
        self.error = error


@dataclass(eq=False)
class Attempt:
    """A booking attempt that passed the pre-check and the gate, waiting for its write."""

    caller: Caller
    target: ResidentId | None
    row: dict[str, Any]  # the session as the pre-check read it
    rules: ReleaseRules
    idem: IdempotencyContext
    hold: bool
    # The request's context: the audit events written for it carry its request id and client address.
    context: contextvars.Context = field(default_factory=contextvars.copy_context)
    claim: Claim | None = None  # its place in the gate, given back as soon as its outcome is known

    @property
    def channel(self) -> str:
        channel = self.caller.channel
        assert channel is not None  # noqa: S101 - with_app fills it in before an attempt is made
        return channel

    @property
    def session_id(self) -> int:
        session_id: int = self.row["id"]
        return session_id


def booking_read(booking: Booking | dict[str, Any]) -> BookingRead:
    return BookingRead.model_validate(booking)


def estimated_time(starts_at: datetime, ends_at: datetime, capacity: int, slot_no: int) -> datetime:
    """The slot's expected time: the session split evenly among its slots (分时段)."""
    return starts_at + (ends_at - starts_at) * (slot_no - 1) / capacity


def month_of(moment: datetime) -> str:
    return business_date(moment).strftime("%Y-%m")


def check_caps(day: list[repository.DayBooking], department_id: int, starts_at: datetime, ends_at: datetime,
               *, ignore_id: int | None = None) -> DomainError | None:
    """domain.md §4: one booking per department a day, at most 2 departments a day, no overlap."""
    others = [b for b in day if b.id != ignore_id]
    if any(b.department_id == department_id for b in others):
        return Conflict("the resident already has a booking in this department on this day",
                        code="same_department_day", field="session_id", rule="booking.one_per_department_day")
    if len({b.department_id for b in others}) >= 2:
        return Conflict("the resident already has bookings in 2 departments on this day",
                        code="daily_department_cap", field="session_id", rule="booking.two_departments_a_day")
    if any(b.starts_at < ends_at and starts_at < b.ends_at for b in others):
        return Conflict("the resident holds another booking overlapping this session's time",
                        code="overlapping_booking", field="session_id", rule="booking.no_overlap")
    return None


def banned_error(until: datetime) -> Forbidden:
    return Forbidden(f"the resident may not book until {until.isoformat()} (no-show sanction)",
                     code="resident_banned", field="id_number", rule="booking.sanction")


def no_slot_error(session_id: int, channel: str, now: datetime, *, status: str, released_at: datetime,
                  booked: int, capacity: int, quota: int | None) -> DomainError:
    """Why a session's row gives `channel` no slot, from the row's state."""
    if status != "open":
        return Conflict("the session is suspended (停诊); its slots cannot be booked", code="session_suspended",
                        field="session_id", rule="booking.session_suspended")
    if released_at > now:
        return Conflict("the session's slots are not released yet", code="not_released", field="session_id",
                        rule="booking.release_window")
    if booked < capacity and quota is not None:
        return quota_exhausted(session_id, channel)
    return sold_out(session_id)


def session_not_found(session_id: int) -> NotFound:
    return NotFound(f"no session {session_id}", code="session_not_found", field="session_id", value=session_id)


async def why_no_slot(session: AsyncSession, session_id: int, channel: str, now: datetime) -> DomainError:
    """The precise reason the slot-taking UPDATE matched nothing."""
    row = await repository.get_booking_session(session, session_id)
    if row is None:
        return session_not_found(session_id)
    return no_slot_error(session_id, channel, now, status=row.status, released_at=row.released_at,
                         booked=row.booked, capacity=row.capacity, quota=getattr(row, f"quota_{channel}"))


def booking_values(attempt: Attempt, resident_id: int, slot_no: int, now: datetime) -> dict[str, Any]:
    """The booking row an attempt makes on slot `slot_no`."""
    row, hold = attempt.row, attempt.hold
    return {
        "session_id": row["id"], "organization_id": row["organization_id"], "department_id": row["department_id"],
        "service_date": row["service_date"], "starts_at": row["starts_at"], "ends_at": row["ends_at"],
        "slot_no": slot_no,
        "estimated_at": estimated_time(row["starts_at"], row["ends_at"], row["capacity"], slot_no),
        "resident_id": resident_id, "channel": attempt.channel, "client_app_id": attempt.caller.app_id,
        "status": "held" if hold else "booked",
        "hold_expires_at": now + timedelta(minutes=attempt.rules.hold_minutes) if hold else None,
        "booked_at": None if hold else now, "checked_in_at": None, "ended_at": None, "end_reason": None,
        "created_by": attempt.caller.subject, "created_at": now, "updated_at": now,
    }


def audit_booking(tx: AsyncSession, clock: Clock, attempt: Attempt, booking_id: int, resident_id: int) -> None:
    """Queue the booking's audit event, in the attempt's own request context (its request id)."""
    attempt.context.run(record, tx, clock, attempt.caller.principal, Action.CREATE, RESOURCE,
                        resource_id=booking_id, resident_ids=[resident_id],
                        detail="hold" if attempt.hold else None)


async def _resolve_resident(tx: AsyncSession, cipher: FieldCipher, caller: Caller, target: ResidentId | None,
                            now: datetime) -> int:
    found = await repository.resident_and_ban(
        tx, now=now, resident_id=caller.resident_id,
        id_number_hash=None if target is None else cipher.lookup_hash(ID_NUMBER, target.number))
    if found is None:
        raise resident_not_found(target)
    resident_id, banned_until = found
    if banned_until is not None:
        raise Refused(resident_id, banned_error(banned_until))
    return resident_id


async def audit_refusal(database: Database, clock: Clock, principal: Principal, refused: Refused) -> None:
    await record_now(database, clock, principal, Action.CREATE, RESOURCE, resident_ids=[refused.resident_id],
                     outcome=Outcome.FAILURE, detail=refused.error.rule or refused.error.code)
    settle_audit(refused.error)


async def write_one(tx: AsyncSession, clock: Clock, cipher: FieldCipher,
                    attempt: Attempt) -> tuple[WriteResult, int | None]:
    """Decide one attempt in `tx`: (the result, slots left for its channel, None for a replay)."""
    now = clock.now()
    row, channel, idem = attempt.row, attempt.channel, attempt.idem
    await idempotency.lock_key(tx, idem)
    if not await repository.may_take_slot(tx, row["id"], channel):
        # Sold out since the first read (another process's winners): refused before any personal data is read.
        raise settle_audit(await why_no_slot(tx, row["id"], channel, now))
    resident_id = await _resolve_resident(tx, cipher, attempt.caller, attempt.target, now)
    service_date: date = row["service_date"]
    await repository.lock_resident_day(tx, resident_id, service_date)
    # Checked again under the day lock: a request with this key may have committed since the first read.
    replay = await idempotency.stored(tx, idem)
    if replay is not None:
        return WriteResult(replay.status, replay.body, replayed=True), None
    day = await repository.active_day_bookings(tx, resident_id, service_date)
    violation = check_caps(day, row["department_id"], row["starts_at"], row["ends_at"])
    if violation is not None:
        raise Refused(resident_id, violation)
    taken = await repository.take_slot(tx, row["id"], channel, now)
    if taken is None:
        raise Refused(resident_id, await why_no_slot(tx, row["id"], channel, now))
    slot_no, left = taken
    values = booking_values(attempt, resident_id, slot_no, now)
    booking_id = await repository.insert_booking(tx, values)
    if not attempt.hold:
        await repository.count_booking(tx, row["organization_id"], month_of(now), channel, attempt.caller.app_id)
    body = booking_read({**values, "id": booking_id}).model_dump_json()
    await idempotency.store(tx, clock, idem, 201, body)
    audit_booking(tx, clock, attempt, booking_id, resident_id)
    return WriteResult(201, body), left
