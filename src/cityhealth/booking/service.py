"""Booking a slot, holding one, confirming a hold: the write path every channel and app goes through.

Order of work, cheapest first: the caller and ID number are checked in memory; one read fetches the
stored idempotency result, the caller's app and the session; a session with no slot left is answered
"sold out" from that read, without a write transaction. Only then does one transaction resolve the
resident, check the ban, lock the resident's day and count the caps, take the slot with a conditional
UPDATE, insert the booking, count it, bind the idempotency key and audit — all or nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from cityhealth.booking import idempotency, repository, statistics
from cityhealth.booking.availability import BookingRuntime, quota_exhausted, sold_out
from cityhealth.booking.channels import (
    Caller,
    caller_of,
    check_claimed_channel,
    parse_target_resident,
    resident_not_found,
    with_app,
)
from cityhealth.booking.idempotency import IdempotencyContext
from cityhealth.booking.models import Booking
from cityhealth.booking.release import ReleaseRules, check_bookable
from cityhealth.booking.schemas import BookingCreate, BookingRead, BookingStatistics, HoldCreate
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


async def why_no_slot(session: AsyncSession, session_id: int, channel: str, now: datetime) -> DomainError:
    """The precise reason the slot-taking UPDATE matched nothing."""
    row = await repository.get_booking_session(session, session_id)
    if row is None:
        return NotFound(f"no session {session_id}", code="session_not_found", field="session_id", value=session_id)
    if row.status != "open":
        return Conflict("the session is suspended (停诊); its slots cannot be booked", code="session_suspended",
                        field="session_id", rule="booking.session_suspended")
    if row.released_at > now:
        return Conflict("the session's slots are not released yet", code="not_released", field="session_id",
                        rule="booking.release_window")
    quota = getattr(row, f"quota_{channel}")
    if row.booked < row.capacity and quota is not None:
        return quota_exhausted(session_id, channel)
    return sold_out(session_id)


@asynccontextmanager
async def read_connection(database: Database) -> AsyncIterator[AsyncConnection]:
    """A connection for a single read; on PostgreSQL in autocommit, saving the BEGIN and ROLLBACK."""
    async with database.engine.connect() as connection:
        if not database.is_sqlite:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
        yield connection


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


async def book(database: Database, clock: Clock, cipher: FieldCipher, runtime: BookingRuntime,
               principal: Principal, request: BookingCreate, idem: IdempotencyContext) -> WriteResult:
    """Book a slot (or confirm a hold) for a master-index resident, through the caller's channel."""
    caller = caller_of(principal)
    with idempotency.claim(idem):
        if request.hold_id is not None:
            return await _confirm_hold(database, clock, cipher, caller, request, idem)
        assert request.session_id is not None  # noqa: S101 - the schema demands one of the two
        return await _take(database, clock, cipher, runtime, caller, request.session_id, request.id_number,
                           request.channel, idem, hold=False)


async def hold(database: Database, clock: Clock, cipher: FieldCipher, runtime: BookingRuntime,
               principal: Principal, request: HoldCreate, idem: IdempotencyContext) -> WriteResult:
    """Hold a slot for at most the hospital's hold time (15 minutes by default) pending confirmation."""
    caller = caller_of(principal)
    with idempotency.claim(idem):
        return await _take(database, clock, cipher, runtime, caller, request.session_id, request.id_number,
                           request.channel, idem, hold=True)


async def _take(database: Database, clock: Clock, cipher: FieldCipher, runtime: BookingRuntime, caller: Caller,
                session_id: int, id_number: str | None, claimed_channel: str | None, idem: IdempotencyContext,
                *, hold: bool) -> WriteResult:
    try:
        checked = await _pre_check(database, clock, runtime, caller, session_id, id_number, claimed_channel, idem)
    except DomainError as error:
        # Refusals before the write transaction read no personal data: for apps, agents and clinics no audit
        # event is due (so "sold out" at release time costs no audit append). A resident's own request
        # read their account when it was authenticated, so theirs is audited by the route.
        if caller.resident_id is None:
            settle_audit(error)
        raise
    if isinstance(checked, WriteResult):
        return checked
    caller, target, row, rules, channel, remaining, refusal = checked
    try:
        async with runtime.gate.admit(session_id, channel, remaining, refusal):
            try:
                async with database.transaction() as tx:
                    result, left = await _write(tx, clock, cipher, caller, target, row, rules, idem, hold=hold)
            except Refused as refused:
                await audit_refusal(database, clock, caller.principal, refused)
                raise refused.error from None
            if left is not None:
                runtime.gate.observe(session_id, channel, left)
    except Conflict as error:
        if error.code in ("sold_out", "quota_exhausted") and caller.resident_id is None and not audit_settled(error):
            settle_audit(error)  # the gate's answer: all slots are claimed, nothing was read
        raise
    runtime.availability.invalidate()
    return result


_Checked = tuple[Caller, "ResidentId | None", dict[str, Any], ReleaseRules, str, int, Callable[[], Conflict]]


async def _pre_check(database: Database, clock: Clock, runtime: BookingRuntime, caller: Caller, session_id: int,
                     id_number: str | None, claimed_channel: str | None,
                     idem: IdempotencyContext) -> WriteResult | _Checked:
    """Everything decided without a write transaction: a replay, or what the write needs (or a refusal)."""
    now = clock.now()
    target = parse_target_resident(caller, id_number, business_date(now))
    reads = runtime.reads(database)
    if reads is not None:
        row = await reads.fetchrow(repository.PRE_CHECK_PG_SQL, *repository.pre_check_args(
            subject=idem.subject, key=idem.key, app_id=caller.app_id, session_id=session_id))
        pre = repository.pre_check_of(row)
    else:
        async with read_connection(database) as connection:
            pre = await repository.pre_check(connection, subject=idem.subject, key=idem.key, app_id=caller.app_id,
                                             session_id=session_id)
    replay = idempotency.replay_of(idem, pre.stored_fingerprint, pre.stored_status, pre.stored_body)
    if replay is not None:
        return WriteResult(replay.status, replay.body, replayed=True)
    caller = with_app(caller, pre.app_channel, pre.app_active, other_channels=pre.app_other_channels,
                      claimed=claimed_channel)
    check_claimed_channel(caller, claimed_channel)
    channel = caller.channel
    assert channel is not None  # noqa: S101 - with_app fills it in
    row = pre.session
    if row is None or (caller.organization_id is not None and row["organization_id"] != caller.organization_id):
        raise NotFound(f"no session {session_id}", code="session_not_found", field="session_id", value=session_id)
    rules = ReleaseRules(**pre.policy) if pre.policy else ReleaseRules()
    check_bookable(rules, service_date=row["service_date"], starts_at=row["starts_at"],
                   released=row["released_at"], status=row["status"], now=now)
    quota = row[f"quota_{channel}"]
    pool_left = (quota - row[f"booked_{channel}"]) if quota is not None else row["open_capacity"] - row["open_booked"]
    total_left = row["capacity"] - row["booked"]

    def refusal() -> Conflict:
        return quota_exhausted(session_id, channel) if quota is not None and total_left > 0 else sold_out(session_id)

    if min(pool_left, total_left) <= 0:
        raise refusal()
    return caller, target, row, rules, channel, min(pool_left, total_left), refusal


async def _write(tx: AsyncSession, clock: Clock, cipher: FieldCipher, caller: Caller, target: ResidentId | None,
                 row: dict[str, Any], rules: ReleaseRules, idem: IdempotencyContext,
                 *, hold: bool) -> tuple[WriteResult, int | None]:
    now = clock.now()
    channel = caller.channel
    assert channel is not None  # noqa: S101
    await idempotency.lock_key(tx, idem)
    if not await repository.may_take_slot(tx, row["id"], channel):
        # Sold out since the first read (another process's winners): refused before any personal data is read.
        raise settle_audit(await why_no_slot(tx, row["id"], channel, now))
    resident_id = await _resolve_resident(tx, cipher, caller, target, now)
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
    values: dict[str, Any] = {
        "session_id": row["id"], "organization_id": row["organization_id"], "department_id": row["department_id"],
        "service_date": service_date, "starts_at": row["starts_at"], "ends_at": row["ends_at"], "slot_no": slot_no,
        "estimated_at": estimated_time(row["starts_at"], row["ends_at"], row["capacity"], slot_no),
        "resident_id": resident_id, "channel": channel, "client_app_id": caller.app_id,
        "status": "held" if hold else "booked",
        "hold_expires_at": now + timedelta(minutes=rules.hold_minutes) if hold else None,
        "booked_at": None if hold else now, "checked_in_at": None, "ended_at": None, "end_reason": None,
        "created_by": caller.subject, "created_at": now, "updated_at": now,
    }
    booking_id = await repository.insert_booking(tx, values)
    if not hold:
        await repository.count_booking(tx, row["organization_id"], month_of(now), channel, caller.app_id)
    body = booking_read({**values, "id": booking_id}).model_dump_json()
    await idempotency.store(tx, clock, idem, 201, body)
    record(tx, clock, caller.principal, Action.CREATE, RESOURCE, resource_id=booking_id, resident_ids=[resident_id],
           detail="hold" if hold else None)
    return WriteResult(201, body), left


def owns(caller: Caller, booking: Booking) -> bool:
    """Object-level rule: whose bookings a caller may see and change (others look like 404)."""
    if caller.resident_id is not None:
        return booking.resident_id == caller.resident_id
    if caller.app_id is not None:
        return booking.client_app_id == caller.app_id
    if caller.channel == "phone":
        return True  # agents act for the resident on the line, who names the booking by ID number
    if caller.organization_id is not None:
        return booking.organization_id == caller.organization_id
    return False


async def owned_booking(tx: AsyncSession, cipher: FieldCipher, clock: Clock, caller: Caller, booking_id: int,
                        id_number: str | None, *, lock: bool = True) -> Booking:
    """The booking if this caller may act on it (and, when an ID number is given, it is that resident's)."""
    booking = await repository.get_booking(tx, booking_id, lock=lock)
    missing = NotFound(f"no booking {booking_id}", code="booking_not_found", field="booking_id", value=booking_id)
    if booking is None or not owns(caller, booking):
        raise missing
    needs_id_number = caller.resident_id is None and caller.app_id is None and caller.channel == "phone"
    if id_number is not None or needs_id_number:
        target = parse_target_resident(caller, id_number, business_date(clock.now()))
        if target is not None:
            found = await repository.resident_and_ban(tx, now=clock.now(),
                                                      id_number_hash=cipher.lookup_hash(ID_NUMBER, target.number))
            if found is None or found[0] != booking.resident_id:
                raise missing
    return booking


async def _confirm_hold(database: Database, clock: Clock, cipher: FieldCipher, caller: Caller,
                        request: BookingCreate, idem: IdempotencyContext) -> WriteResult:
    assert request.hold_id is not None  # noqa: S101
    now = clock.now()
    async with database.transaction() as tx:
        await idempotency.lock_key(tx, idem)
        replay = await idempotency.stored(tx, idem)
        if replay is not None:
            return WriteResult(replay.status, replay.body, replayed=True)
        booking = await owned_booking(tx, cipher, clock, caller, request.hold_id, request.id_number)
        if booking.status != "held":
            raise Conflict(f"booking {booking.id} is {booking.status}, not a hold", code="not_a_hold",
                           field="hold_id", value=booking.id, rule="booking.hold")
        if booking.hold_expires_at is None or booking.hold_expires_at <= now:
            raise Conflict("the hold has expired; its slot went back to the pool", code="hold_expired",
                           field="hold_id", value=booking.id, rule="booking.hold_expiry")
        await repository.set_booking(tx, booking.id, status="booked", booked_at=now, hold_expires_at=None,
                                     updated_at=now)
        await repository.count_booking(tx, booking.organization_id, month_of(now), booking.channel,
                                       booking.client_app_id)
        await repository.waitlist_offer_taken(tx, booking.id, now)
        await tx.refresh(booking)
        body = booking_read(booking).model_dump_json()
        await idempotency.store(tx, clock, idem, 201, body)
        record(tx, clock, caller.principal, Action.UPDATE, RESOURCE, resource_id=booking.id,
               resident_ids=[booking.resident_id], detail="hold confirmed")
    return WriteResult(201, body)


async def bulletin_section(session: AsyncSession, month: str) -> BookingStatistics:
    """The bulletin's booking section of a month (the scenario format's `booking`), from the counters."""
    return await statistics.monthly(session, month)
