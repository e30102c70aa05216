"""The agent desk: an agent's open calls, the caller identified within one, and bookings made for that caller.

The object rule security left for this room: an agent reads a resident's data only within their own open
call (answered by them, not ended). Every lookup names the call and is audited with it; a lookup or booking
for a call that is not the agent's, or not open, is refused (403) and the refusal audited with the call id.
Bookings go through the booking service (booking.service: the one booking decision, channel phone, acting
on behalf of the identified resident), and each is linked to the call, so that phone_booking calls and
phone bookings reconcile (`reconcile`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking import service as booking
from cityhealth.clock import BUSINESS_TZ, Clock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.errors import Conflict, Forbidden, ValidationFailed
from cityhealth.hotline import desk_repository, repository
from cityhealth.hotline.desk_schemas import (
    CallBookingRead,
    CallerRead,
    DeskBookingResult,
    DeskCall,
    IdentifyIn,
    IdentifyResult,
    Reconciliation,
)
from cityhealth.hotline.models import Call, CallCaller
from cityhealth.hotline.service import call_read
from cityhealth.registry import service as registry
from cityhealth.security.audit import Action, Outcome, record, record_now
from cityhealth.security.principals import Principal

RESOURCE = "hotline_desk"
RULE = "hotline.desk.own_open_call"
_SHOWN_IDS = 100


def _not_yours(call_id: int) -> Forbidden:
    return Forbidden(f"call {call_id} is not one this agent answered; a caller's data is read only within "
                     "the agent's own open call", code="call_not_yours", field="call_id", value=call_id, rule=RULE)


def _not_open(call_id: int, state: str) -> Forbidden:
    return Forbidden(f"call {call_id} is {state}, not open; a caller's data is read only while the call is on",
                     code="call_not_open", field="call_id", value=call_id, rule=RULE)


async def own_open_call(session: AsyncSession, database: Database, clock: Clock, principal: Principal,
                        call_id: int, *, doing: str, lock: bool = False) -> Call:
    """The agent's own open call, or a refusal audited (in its own transaction) with the call id; `lock`:
    held until the transaction ends, so two requests changing the call's desk rows take turns."""
    call = await (repository.call_for_update(session, call_id) if lock else repository.call(session, call_id))
    error: Forbidden | None = None
    if call is None or call.agent is None or call.agent != principal.subject:
        error = _not_yours(call_id)
    elif call.state != desk_repository.OPEN:
        error = _not_open(call_id, call.state)
    if error is not None:
        await record_now(database, clock, principal, Action.DENIED, "resident", resource_id=f"call:{call_id}",
                         outcome=Outcome.DENIED, detail=f"{error.code}: {doing} outside the agent's open call")
        raise error
    assert call is not None  # noqa: S101 - refused above otherwise
    return call


async def _caller_read(session: AsyncSession, settings: Settings, row: CallCaller) -> CallerRead:
    view = await registry.resident_view(session, registry.cipher_for(settings), row.resident_id)
    return CallerRead(resident_id=view.id, name=view.name, id_number_masked=view.id_number_masked,
                      phone_masked=view.phone_masked, birth_date=view.birth_date, method=row.method,
                      identified_at=row.identified_at)


async def open_calls(session: AsyncSession, clock: Clock, settings: Settings, principal: Principal) -> list[DeskCall]:
    """The agent's open calls, each with its identified caller (masked) and the bookings made in it."""
    calls = await desk_repository.open_calls(session, principal.subject)
    ids = [call.id for call in calls]
    callers = await desk_repository.callers_of(session, ids)
    links = await desk_repository.bookings_of(session, ids)
    found: list[DeskCall] = []
    for call in calls:
        caller = callers.get(call.id)
        found.append(DeskCall(
            **call_read(settings, call).model_dump(),
            caller=await _caller_read(session, settings, caller) if caller else None,
            bookings=[CallBookingRead(booking_id=link.booking_id, action=link.action, agent=link.agent, at=link.at)
                      for link in links[call.id]]))
    record(session, clock, principal, Action.LIST, "hotline_call", detail=f"desk open calls={len(calls)}",
           resident_ids=[row.resident_id for row in callers.values()])
    return found


async def identify(session: AsyncSession, database: Database, clock: Clock, settings: Settings,
                   principal: Principal, call_id: int, data: IdentifyIn) -> IdentifyResult:
    """Look the caller up in the master index within the agent's open call; one match is tied to the call."""
    call = await own_open_call(session, database, clock, principal, call_id, doing="resident lookup", lock=True)
    purpose = f"call:{call.id}"
    matches = await registry.match_residents(
        session, clock, registry.cipher_for(settings), principal, purpose=purpose, id_number=data.id_number,
        name=data.name, birth_date=data.birth_date, phone=data.phone)
    if len(matches) != 1:
        message = ("no resident matches; ask again or for the ID number" if not matches else
                   f"{len(matches)} residents match; ask for the ID number to tell them apart")
        return IdentifyResult(call_id=call.id, matches=len(matches), caller=None, message=message)
    resident_id, _ = matches[0]
    method = "id_number" if data.id_number else "phone" if data.phone else "name_birth_date"
    row = await desk_repository.caller_of(session, call.id)
    now = clock.now()
    if row is None:
        row = CallCaller(call_id=call.id, resident_id=resident_id, identified_by=principal.subject, method=method,
                         identified_at=now)
        session.add(row)
    elif row.resident_id != resident_id or row.method != method:
        row.resident_id, row.method, row.identified_by, row.identified_at = (resident_id, method,
                                                                             principal.subject, now)
    await registry.flush_unique(session, Conflict(
        "another request identified this call's caller at the same moment; send it again",
        code="caller_identified_concurrently", field="call_id", value=call.id,
        rule="hotline.desk.one_caller_per_call"))
    record(session, clock, principal, Action.UPDATE, "hotline_call", resource_id=call.id,
           resident_ids=[resident_id], detail="caller identified")
    return IdentifyResult(call_id=call.id, matches=1, caller=await _caller_read(session, settings, row),
                          message="caller identified")


@dataclass(frozen=True)
class _Acting:
    """The agent in their open call, acting on behalf of its identified caller."""

    call: Call
    principal: Principal  # the agent, `on_behalf_of` the resident (so the audit trail names both)
    resident_id: int
    id_number: str  # the caller's, for the booking service's real-name check; never shown


async def _acting_for(session: AsyncSession, database: Database, clock: Clock, settings: Settings,
                      principal: Principal, call_id: int, doing: str) -> _Acting:
    call = await own_open_call(session, database, clock, principal, call_id, doing=doing)
    caller = await desk_repository.caller_of(session, call.id)
    if caller is None:
        raise Conflict(f"identify the caller of call {call.id} before booking for them", code="caller_not_identified",
                       field="call_id", value=call.id, rule="hotline.desk.caller_identified")
    id_number = await registry.resident_id_number(session, registry.cipher_for(settings), caller.resident_id)
    return _Acting(call, replace(principal, on_behalf_of=f"resident:{caller.resident_id}"), caller.resident_id,
                   id_number)


def _booking_of(result: booking.WriteResult) -> booking.BookingRead:
    return booking.BookingRead.model_validate(json.loads(result.body))


async def _linked(session: AsyncSession, clock: Clock, acting: _Acting, action: Literal["book", "cancel", "reschedule"],
                  view: booking.BookingRead) -> DeskBookingResult:
    call = acting.call
    await desk_repository.link_booking(session, call.id, view.id, action, acting.principal.subject, clock.now())
    record(session, clock, acting.principal, Action.UPDATE, "hotline_call", resource_id=call.id,
           resident_ids=[acting.resident_id], detail=f"desk {action}: booking {view.id}")
    return DeskBookingResult(call_id=call.id, action=action, booking=view)


async def book(database: Database, clock: Clock, settings: Settings, runtime: booking.BookingRuntime,
               principal: Principal, call_id: int, session_id: int, idem: booking.IdempotencyContext
               ) -> DeskBookingResult:
    """Book a slot for the call's identified caller through the booking service, and link it to the call.

    The booking's transaction is its group commit's; the link is written after it, in its own: a retry
    with the same Idempotency-Key replays the booking and writes a link that is still missing."""
    async with database.transaction() as session:
        acting = await _acting_for(session, database, clock, settings, principal, call_id, "booking")
    try:
        result = await booking.book(database, clock, registry.cipher_for(settings), runtime, acting.principal,
                                    booking.BookingCreate(session_id=session_id, id_number=acting.id_number), idem,
                                    call_id=acting.call.id)
    except booking.Refused as refused:  # a refusal after the resident was read: audited as the booking API does
        await booking.audit_refusal(database, clock, acting.principal, refused)
        raise refused.error from None
    async with database.transaction() as session:
        return await _linked(session, clock, acting, "book", _booking_of(result))


async def cancel(session: AsyncSession, database: Database, clock: Clock, settings: Settings,
                 runtime: booking.BookingRuntime, principal: Principal, call_id: int,
                 booking_id: int) -> DeskBookingResult:
    """Cancel one of the identified caller's bookings (the booking service's rule and cut-off)."""
    acting = await _acting_for(session, database, clock, settings, principal, call_id, "cancellation")
    view = await booking.cancel(session, clock, registry.cipher_for(settings), runtime, acting.principal,
                                booking_id, booking.CancelRequest(id_number=acting.id_number), call_id=acting.call.id)
    return await _linked(session, clock, acting, "cancel", view)


async def reschedule(session: AsyncSession, database: Database, clock: Clock, settings: Settings,
                     runtime: booking.BookingRuntime, principal: Principal, call_id: int, booking_id: int,
                     session_id: int, idem: booking.IdempotencyContext) -> DeskBookingResult:
    """Move one of the identified caller's bookings to another session; the new booking is linked."""
    acting = await _acting_for(session, database, clock, settings, principal, call_id, "reschedule")
    request = booking.RescheduleRequest(session_id=session_id, id_number=acting.id_number)
    try:
        result = await booking.reschedule(session, clock, registry.cipher_for(settings), runtime, acting.principal,
                                          booking_id, request, idem, call_id=acting.call.id)
    except booking.Refused as refused:  # audited in its own transaction; the request's rolls back
        await booking.audit_refusal(database, clock, acting.principal, refused)
        raise refused.error from None
    return await _linked(session, clock, acting, "reschedule", _booking_of(result))


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=BUSINESS_TZ)


async def reconcile(session: AsyncSession, clock: Clock, principal: Principal, first: date,
                    last: date) -> Reconciliation:
    """For business days first..last: phone bookings with and without a call, phone_booking calls with and
    without a booking (a booking counts on the day it was made, a call on the day it started). Booking rows
    are counted: a reschedule's new booking is one too (linked to its call), though the bulletin counts a
    booking once, when first made."""
    if last < first:
        raise ValidationFailed("the period's last day is before its first", field="last", value=last.isoformat(),
                               rule="period.order")
    if (last - first).days > 92:
        raise ValidationFailed("a reconciliation covers at most 93 days", field="last", value=last.isoformat(),
                               rule="period.length")
    made = await booking.phone_bookings(session, _day_start(first), _day_start(last + timedelta(days=1)))
    linked = await desk_repository.linked_booking_ids(session, made)
    calls = await desk_repository.phone_booking_calls(session, first, last)
    record(session, clock, principal, Action.SEARCH, RESOURCE,
           detail=f"reconciliation {first.isoformat()}..{last.isoformat()}")
    return Reconciliation(
        first=first, last=last, phone_bookings=len(made), phone_bookings_with_call=len(linked),
        phone_bookings_without_call=[bid for bid in made if bid not in linked][:_SHOWN_IDS],
        phone_booking_calls=len(calls), phone_booking_calls_with_booking=sum(1 for _, has in calls if has),
        phone_booking_calls_without_booking=[cid for cid, has in calls if not has][:_SHOWN_IDS])
