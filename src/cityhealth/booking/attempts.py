"""One booking attempt after its pre-check: its outcome types, its refusals, what it writes and audits.

Every attempt is decided by the group commit (`group_commit.py`), alone or with the session's other
queued attempts: a single attempt is a batch of one.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking import repository
from cityhealth.booking.availability import Claim
from cityhealth.booking.channels import Caller
from cityhealth.booking.idempotency import IdempotencyContext
from cityhealth.booking.models import Booking
from cityhealth.booking.release import ReleaseRules
from cityhealth.booking.schemas import BookingRead
from cityhealth.clock import Clock, business_date
from cityhealth.db.engine import Database
from cityhealth.errors import Conflict, DomainError, Forbidden, NotFound
from cityhealth.registry.identifiers import ResidentId
from cityhealth.security.audit import Action, Outcome, record, record_now
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


def session_not_found(session_id: int) -> NotFound:
    return NotFound(f"no session {session_id}", code="session_not_found", field="session_id", value=session_id)


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


async def audit_refusal(database: Database, clock: Clock, principal: Principal, refused: Refused) -> None:
    await record_now(database, clock, principal, Action.CREATE, RESOURCE, resident_ids=[refused.resident_id],
                     outcome=Outcome.FAILURE, detail=refused.error.rule or refused.error.code)
    settle_audit(refused.error)
