"""Booking a slot, holding one, confirming a hold: the write path every channel and app goes through.

Order of work, cheapest first: the caller and ID number are checked in memory; one read fetches the
stored idempotency result, the caller's app and the session; a session with no slot left is answered
"sold out" from that read, without a write transaction. The gate admits at most as many attempts as the
session has slots left; those join the session's group commit (booking/group_commit.py), where one
transaction per batch resolves the residents, checks the bans, locks the residents' days and counts the
caps, takes the slots, inserts the bookings, counts them, binds the idempotency keys and audits — all or
nothing, each attempt with its own answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import date, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking import evidence_repository, idempotency, messages, repository, statistics
from cityhealth.booking.attempts import (
    RESOURCE,
    Attempt,
    Refused,
    WriteResult,
    audit_refusal,
    audit_settled,
    booking_read,
    month_of,
    settle_audit,
)
from cityhealth.booking.availability import BookingRuntime, runtime_of
from cityhealth.booking.channels import (
    WITHIN_CALL,
    Caller,
    caller_of,
    check_claimed_channel,
    parse_target_resident,
    with_app,
)
from cityhealth.booking.family import LINK as FAMILY_LINK
from cityhealth.booking.family import add_member as add_family_member
from cityhealth.booking.family import confirm as confirm_family_link
from cityhealth.booking.family import links as family_links
from cityhealth.booking.family import revoke as revoke_family_link
from cityhealth.booking.group_commit import WritePath, decide_batch
from cityhealth.booking.idempotency import IdempotencyContext, context_for
from cityhealth.booking.models import Booking, Callback
from cityhealth.booking.nearby import nearby
from cityhealth.booking.release import ReleaseRules
from cityhealth.booking.schemas import (
    AvailabilityRead,
    BookingCreate,
    BookingRead,
    BookingStatistics,
    CallbackRead,
    CancelRequest,
    HoldCreate,
    RescheduleRequest,
    SessionRead,
)
from cityhealth.booking.slots import SessionSlots, exhausted, is_sold_out, refusal
from cityhealth.clock import Clock, business_date
from cityhealth.db.engine import Database
from cityhealth.errors import Conflict, DomainError, NotFound, ValidationFailed
from cityhealth.registry.identifiers import ResidentId
from cityhealth.registry.protection import ID_NUMBER
from cityhealth.security.audit import Action, record
from cityhealth.security.crypto import FieldCipher
from cityhealth.security.principals import Principal, PrincipalKind

if TYPE_CHECKING:  # booking/schedules.py builds on this module
    from cityhealth.booking.schedules import ChannelAnswer as ChannelAnswer

# The room's use cases, and the outcome types and audit helpers that its api and other domains use with them;
# the resident app's map and family links are the e-map's and the family routes' use cases (booking/nearby.py,
# booking/family.py), which build on the room's lower modules, not on this one, so they are imported here.
__all__ = ["FAMILY_LINK", "RESOURCE", "BookingCreate", "BookingRead", "BookingRuntime", "CallbackRead",
           "CancelRequest", "IdempotencyContext", "Refused", "RescheduleRequest", "WriteResult", "add_family_member",
           "audit_refusal", "audit_settled", "book", "booking_read", "bulletin_section", "cancel", "channel_answers",
           "close_callback", "confirm_family_link", "context_for", "due_callback", "due_callbacks", "family_links",
           "get_session", "hold", "nearby", "own_bookings", "owned_booking", "owns", "phone_bookings", "reschedule",
           "revoke_family_link", "runtime_of", "search", "take_as"]


async def book(database: Database, clock: Clock, cipher: FieldCipher, runtime: BookingRuntime,
               principal: Principal, request: BookingCreate, idem: IdempotencyContext, *,
               call_id: int | None = None) -> WriteResult:
    """Book a slot for a master-index resident, through the caller's channel (decided by the group commit);
    `call_id`: the hotline call a phone agent books in (the desk's: booking/channels.py)."""
    assert request.session_id is not None  # noqa: S101 - the schema demands it or a hold_id (confirm_hold)
    return await take_as(database, clock, cipher, runtime, caller_of(principal, call_id=call_id),
                         request.session_id, request.id_number, request.channel, idem, hold=False)


async def hold(database: Database, clock: Clock, cipher: FieldCipher, runtime: BookingRuntime,
               principal: Principal, request: HoldCreate, idem: IdempotencyContext) -> WriteResult:
    """Hold a slot for at most the hospital's hold time (15 minutes by default) pending confirmation."""
    return await take_as(database, clock, cipher, runtime, caller_of(principal), request.session_id,
                         request.id_number, request.channel, idem, hold=True)


async def take_as(database: Database, clock: Clock, cipher: FieldCipher, runtime: BookingRuntime, caller: Caller,
                  session_id: int, id_number: str | None, claimed_channel: str | None, idem: IdempotencyContext,
                  *, hold: bool) -> WriteResult:
    """Book or hold as `caller` (a manager acting for a family member: booking/family.py)."""
    with idempotency.claim(idem):
        return await _take(database, clock, cipher, runtime, caller, session_id, id_number, claimed_channel, idem,
                           hold=hold)


async def _take(database: Database, clock: Clock, cipher: FieldCipher, runtime: BookingRuntime, caller: Caller,
                session_id: int, id_number: str | None, claimed_channel: str | None, idem: IdempotencyContext,
                *, hold: bool) -> WriteResult:
    read_at = time.monotonic()
    try:
        checked = await _pre_check(database, clock, runtime, caller, session_id, id_number, claimed_channel, idem)
    except DomainError as error:
        # Refusals before the write transaction read no personal data: for apps, agents and clinics no audit
        # event is due (so "sold out" at release time costs no audit append). A resident's own request
        # read their account when it was authenticated, so theirs is audited by the route; so is an agent's
        # attempt to name a resident outside a call, an access refused.
        if caller.resident_id is None and error.rule != WITHIN_CALL:
            settle_audit(error)
        raise
    if isinstance(checked, WriteResult):
        return checked
    caller, target, row, rules, channel, remaining, refusal = checked
    path = WritePath(database, runtime.writes(database), clock, cipher, runtime.gate, runtime.committer)
    try:
        claim = await runtime.gate.admit(session_id, channel, remaining, refusal, read_at=read_at)
        try:
            attempt = Attempt(caller, target, row, rules, idem, hold, claim=claim)
            # A batch of one or of many: the same decision (group_commit.py), in the leader's transaction.
            # A `Refused` raised here is audited by the route, as every refusal after a resident was read.
            result: WriteResult = await runtime.committer.submit(
                path.key(session_id), attempt, partial(decide_batch, path, session_id))
        finally:
            claim.release()
    except Conflict as error:
        if is_sold_out(error) and caller.resident_id is None and not audit_settled(error):
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
            subject=idem.subject, key=idem.key, app_id=caller.app_id, session_id=session_id, now=now))
        pre = repository.pre_check_of(row)
    else:
        async with database.read_connection() as connection:
            pre = await repository.pre_check(connection, subject=idem.subject, key=idem.key, app_id=caller.app_id,
                                             session_id=session_id, now=now)
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
    slots = SessionSlots.of(row)
    error = refusal(slots, rules, channel, now)
    if error is not None:
        raise error
    # The gate admits as many attempts as the rule leaves slots; those beyond get the rule's answer for a
    # channel whose slots are gone.
    return caller, target, row, rules, channel, slots.left(channel), partial(exhausted, slots, channel)


async def own_bookings(session: AsyncSession, clock: Clock, principal: Principal) -> list[BookingRead]:
    """A resident's own bookings (the latest 200), the latest day first."""
    if principal.kind is not PrincipalKind.RESIDENT or principal.resident_id is None:
        raise ValidationFailed("only a resident lists their own bookings; others open a booking by id",
                               code="resident_only", field="principal", rule="booking.own_list")
    views = [booking_read(row) for row in await repository.resident_bookings(session, principal.resident_id)]
    record(session, clock, principal, Action.LIST, RESOURCE, resident_ids=[principal.resident_id])
    return views


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


async def confirm_hold(tx: AsyncSession, clock: Clock, cipher: FieldCipher, principal: Principal,
                       request: BookingCreate, idem: IdempotencyContext, *,
                       caller: Caller | None = None) -> WriteResult:
    """Confirm a hold (POST /bookings with hold_id), in the request's transaction; `caller`: as family.py's."""
    assert request.hold_id is not None  # noqa: S101 - the route sends only these here
    caller = caller or caller_of(principal)
    now = clock.now()
    with idempotency.claim(idem):
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
        await messages.booked(tx, now, [booking])
        body = booking_read(booking).model_dump_json()
        await idempotency.store(tx, clock, idem, 201, body)
        record(tx, clock, caller.principal, Action.UPDATE, RESOURCE, resource_id=booking.id,
               resident_ids=[booking.resident_id], detail="hold confirmed")
    return WriteResult(201, body)


async def bulletin_section(session: AsyncSession, month: str) -> BookingStatistics:
    """The bulletin's booking section of a month (the scenario format's `booking`), from the counters."""
    return await statistics.monthly(session, month)


# --- For the hotline's agent desk, which acts through this service (booking/lifecycle.py and
# booking/suspension.py build on this module, hence the imports inside the functions) ------------------------


async def cancel(session: AsyncSession, clock: Clock, cipher: FieldCipher, runtime: BookingRuntime,
                 principal: Principal, booking_id: int, data: CancelRequest, *,
                 call_id: int | None = None) -> BookingRead:
    """Cancel a booking as `principal` (the one cancellation rule: booking/lifecycle.py), in call `call_id`."""
    from cityhealth.booking import lifecycle

    return await lifecycle.cancel(session, clock, cipher, runtime, principal, booking_id, data,
                                  caller=caller_of(principal, call_id=call_id))


async def reschedule(session: AsyncSession, clock: Clock, cipher: FieldCipher, runtime: BookingRuntime,
                     principal: Principal, booking_id: int, data: RescheduleRequest,
                     idem: IdempotencyContext, *, call_id: int | None = None) -> WriteResult:
    """Move a booking to another session as `principal` (booking/lifecycle.py), in call `call_id`."""
    from cityhealth.booking import lifecycle

    return await lifecycle.reschedule(session, clock, cipher, runtime, principal, booking_id, data, idem,
                                      caller=caller_of(principal, call_id=call_id))


# --- For the resident booking pages (web), which read the schedules through this service -------------------


async def search(database: Database, clock: Clock, runtime: BookingRuntime, principal: Principal | None, *,
                 organization_id: int | None, department_id: int | None, practitioner_id: int | None,
                 date_from: date | None, date_to: date | None) -> list[AvailabilityRead]:
    """The availability search (booking/schedules.py)."""
    from cityhealth.booking import schedules

    return await schedules.search(database, clock, runtime, principal, organization_id=organization_id,
                                  department_id=department_id, practitioner_id=practitioner_id,
                                  date_from=date_from, date_to=date_to)


async def get_session(session: AsyncSession, session_id: int) -> SessionRead:
    """One session, or 404 (booking/schedules.py)."""
    from cityhealth.booking import schedules

    return await schedules.get_session(session, session_id)


async def channel_answers(session: AsyncSession, clock: Clock, session_ids: Sequence[int],
                          channel: str) -> dict[int, ChannelAnswer]:
    """The booking rule's answer for `channel` now on each session (booking/schedules.py)."""
    from cityhealth.booking import schedules

    return await schedules.channel_answers(session, clock, session_ids, channel)


async def due_callbacks(session: AsyncSession, limit: int) -> list[tuple[CallbackRead, int]]:
    """The open call-backs of suspended sessions, oldest first, each with its resident's id (unaudited: the
    caller audits what it shows)."""
    rows = await repository.open_callbacks(session, limit)
    return [(CallbackRead.model_validate(row), row.resident_id) for row in rows]


async def due_callback(session: AsyncSession, callback_id: int) -> tuple[CallbackRead, int] | None:
    """One open call-back with its resident's id (unaudited, as `due_callbacks`); None when none is open."""
    row = await session.get(Callback, callback_id)
    return None if row is None or row.status != "open" else (CallbackRead.model_validate(row), row.resident_id)


async def close_callback(session: AsyncSession, clock: Clock, principal: Principal, callback_id: int,
                         note: str | None) -> CallbackRead:
    """Mark a call-back done (booking/suspension.py)."""
    from cityhealth.booking import suspension

    return await suspension.close_callback(session, clock, principal, callback_id, note)


async def phone_bookings(session: AsyncSession, first: datetime, until: datetime) -> list[int]:
    """The ids of the bookings made through the phone channel in [first, until)."""
    return await repository.channel_booking_ids(session, "phone", first, until)


async def booking_at_organization(session: AsyncSession, resident_id: int, organization_id: int, first_day: date,
                                  last_day: date) -> int | None:
    """The id of a resident's live booking (booked or checked in) at an organization with a service day between
    `first_day` and `last_day`, if any: the shared record's access check asks it (unaudited: the caller audits)."""
    return await evidence_repository.booking_at_organization(session, resident_id, organization_id, first_day, last_day)
