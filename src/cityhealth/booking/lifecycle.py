"""After booking: cancel, check in, reschedule, and the jobs that expire holds and mark no-shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking import idempotency, messages, repository, sanctions, waitlist
from cityhealth.booking.attempts import (
    RESOURCE,
    Refused,
    WriteResult,
    booking_read,
    check_caps,
    estimated_time,
)
from cityhealth.booking.availability import BookingRuntime
from cityhealth.booking.channels import Caller, caller_of
from cityhealth.booking.idempotency import IdempotencyContext
from cityhealth.booking.models import Booking
from cityhealth.booking.release import ReleaseRules, cancellation_deadline, rules_for
from cityhealth.booking.schemas import BookingRead, CancelRequest, RescheduleRequest
from cityhealth.booking.service import owned_booking
from cityhealth.booking.slots import LapsedHold, SessionSlots, is_sold_out, refusal
from cityhealth.clock import Clock, business_date
from cityhealth.db.engine import Database
from cityhealth.errors import Conflict, NotFound, ValidationFailed
from cityhealth.security.audit import Action, record
from cityhealth.security.crypto import FieldCipher
from cityhealth.security.principals import Principal, Scope

NO_SHOW_ACTOR = "job:booking.mark_no_shows"
HOLD_SWEEP_ACTOR = "job:booking.sweep_holds"
RESCHEDULE_EXPIRY_ACTOR = "booking:reschedule"  # who expires a lapsed hold a reschedule takes or tidies


async def _free_slot(tx: AsyncSession, clock: Clock, booking: Booking, principal: Principal | None) -> None:
    """Give the booking's slot back and offer it to the first resident waiting."""
    await waitlist.give_back(tx, booking.session_id, booking.channel, booking.slot_no, clock.now())
    await waitlist.promote(tx, clock, booking.session_id, principal)


async def cancel(session: AsyncSession, clock: Clock, cipher: FieldCipher, runtime: BookingRuntime,
                 principal: Principal, booking_id: int, data: CancelRequest, *,
                 caller: Caller | None = None) -> BookingRead:
    """Cancel before the hospital's cut-off; cancelling again returns the cancelled booking."""
    now = clock.now()
    caller = caller or caller_of(principal)
    booking = await owned_booking(session, cipher, clock, caller, booking_id, data.id_number)
    if booking.status == "cancelled":
        record(session, clock, principal, Action.READ, RESOURCE, resource_id=booking.id,
               resident_ids=[booking.resident_id], detail="already cancelled")
        return booking_read(booking)
    if booking.status not in ("held", "booked"):
        raise Conflict(f"a booking that is {booking.status} cannot be cancelled", code="not_cancellable",
                       field="booking_id", value=booking_id, rule="booking.cancellable_states")
    if booking.status == "booked":
        deadline = cancellation_deadline(await rules_for(session, booking.organization_id), booking.service_date)
        if deadline is None or now > deadline:
            raise Conflict("this booking can no longer be cancelled" + (
                f" (the cut-off was {deadline.isoformat()})" if deadline else " (the hospital allows none)"),
                code="cancellation_closed", field="booking_id", value=booking_id, rule="booking.cancel_cutoff")
    await messages.cancelled(session, now, booking)  # before the status changes: only a booked one is told
    await repository.set_booking(session, booking.id, status="cancelled", ended_at=now,
                                 end_reason="cancelled", hold_expires_at=None, updated_at=now)
    await repository.waitlist_offer_expired(session, booking.id, now)
    await _free_slot(session, clock, booking, principal)
    await session.refresh(booking)
    record(session, clock, principal, Action.UPDATE, RESOURCE, resource_id=booking.id,
           resident_ids=[booking.resident_id], detail="cancelled")
    runtime.availability.invalidate()
    return booking_read(booking)


async def check_in(session: AsyncSession, clock: Clock, principal: Principal, booking_id: int) -> BookingRead:
    """The hospital reports the patient's arrival; refused after the session's pick-up deadline."""
    now = clock.now()
    booking = await repository.get_booking(session, booking_id, lock=True)
    if booking is None or not principal.has(Scope.BOOKING_SCHEDULE) or (
            booking.organization_id != principal.organization_id and not principal.is_platform_admin):
        raise NotFound(f"no booking {booking_id}", code="booking_not_found", field="booking_id", value=booking_id)
    if booking.status == "checked_in":
        record(session, clock, principal, Action.READ, RESOURCE, resource_id=booking.id,
               resident_ids=[booking.resident_id], detail="already checked in")
        return booking_read(booking)
    if booking.status != "booked":
        raise Conflict(f"a booking that is {booking.status} cannot be checked in", code="not_checkable",
                       field="booking_id", value=booking_id, rule="booking.check_in_states")
    row = await repository.get_booking_session(session, booking.session_id)
    assert row is not None  # noqa: S101 - a foreign key
    if business_date(now) != booking.service_date:
        raise Conflict("check-in is only on the day of the session", code="checkin_wrong_day",
                       field="booking_id", value=booking_id, rule="booking.check_in_day")
    if now > row.pickup_deadline:
        raise Conflict("the pick-up deadline has passed; the booking is void", code="checkin_closed",
                       field="booking_id", value=booking_id, rule="booking.pickup_deadline")
    await repository.set_booking(session, booking.id, status="checked_in", checked_in_at=now, updated_at=now)
    await session.refresh(booking)
    record(session, clock, principal, Action.UPDATE, RESOURCE, resource_id=booking.id,
           resident_ids=[booking.resident_id], detail="checked in")
    return booking_read(booking)


async def reschedule(tx: AsyncSession, clock: Clock, cipher: FieldCipher, runtime: BookingRuntime,
                     principal: Principal, booking_id: int, data: RescheduleRequest,
                     idem: IdempotencyContext, *, caller: Caller | None = None) -> WriteResult:
    """Move a booking to another session of the same hospital, in the request's transaction (改约).

    The old booking must still be cancellable; the new one obeys every booking rule, its caps counted
    without the booking it replaces. Counted once in the statistics: when it was first made. `caller`: a
    manager acting for a family member (family.py).
    """
    caller = caller or caller_of(principal)
    now = clock.now()
    with idempotency.claim(idem):
        await idempotency.lock_key(tx, idem)
        replay = await idempotency.stored(tx, idem)
        if replay is not None:
            return WriteResult(replay.status, replay.body, replayed=True)
        old = await owned_booking(tx, cipher, clock, caller, booking_id, data.id_number)
        if old.status != "booked":
            raise Conflict(f"a booking that is {old.status} cannot be rescheduled", code="not_reschedulable",
                           field="booking_id", value=booking_id, rule="booking.reschedule_states")
        rules = await rules_for(tx, old.organization_id)
        deadline = cancellation_deadline(rules, old.service_date)
        if deadline is None or now > deadline:
            raise Conflict("this booking can no longer be changed", code="cancellation_closed",
                           field="booking_id", value=booking_id, rule="booking.cancel_cutoff")
        new = await repository.session_row_at(tx, data.session_id, now)
        if new is None or new["organization_id"] != old.organization_id:
            raise NotFound(f"no session {data.session_id} at this hospital", code="session_not_found",
                           field="session_id", value=data.session_id)
        error = refusal(SessionSlots.of(new), rules, old.channel, now)
        if error is not None and not is_sold_out(error):
            raise error  # the session's state or the moment: no resident data is needed to say so
        _check_slot_no(data.slot_no, new, old)
        # A `Refused` from here on (caps, the slot gone) is audited by the route, after this rolls back.
        body = await _move(tx, clock, principal, old, new, rules, data.slot_no)
        await idempotency.store(tx, clock, idem, 201, body)
    runtime.availability.invalidate()
    return WriteResult(201, body)


def _check_slot_no(slot_no: int | None, new: dict[str, Any], old: Booking) -> None:
    """A slot asked for must be one of the session's, and not the very slot being moved from."""
    if slot_no is None:
        return
    if slot_no > new["capacity"]:
        raise ValidationFailed(f"session {new['id']} has slots 1 to {new['capacity']}", code="slot_out_of_range",
                               field="slot_no", value=slot_no, rule="booking.reschedule_slot_range")
    if new["id"] == old.session_id and slot_no == old.slot_no:
        raise ValidationFailed("the booking already has this slot", code="same_slot", field="slot_no",
                               value=slot_no, rule="booking.reschedule_other_slot")


def slot_not_free(session_id: int, slot_no: int) -> Conflict:
    return Conflict(f"slot {slot_no} of session {session_id} is not free", code="slot_not_free", field="slot_no",
                    value=slot_no, rule="booking.reschedule_slot_free")


async def _move(tx: AsyncSession, clock: Clock, principal: Principal, old: Booking, new: dict[str, Any],
                rules: ReleaseRules, wanted: int | None) -> str:
    now = clock.now()
    for day in sorted({old.service_date, new["service_date"]}):
        await repository.lock_resident_day(tx, old.resident_id, day)
    # The resident's holds of that day lapsed by now hold nothing (the clock decides, not the sweeper).
    day_bookings = await repository.active_day_bookings(tx, old.resident_id, new["service_date"], now)
    lapsed = await repository.lapsed_day_holds(tx, old.resident_id, new["service_date"], now)
    violation = check_caps(day_bookings, new["department_id"], new["starts_at"], new["ends_at"], ignore_id=old.id)
    if violation is not None:
        raise Refused(old.resident_id, violation)
    for own in lapsed:  # tidied here: one of them may stand in the way of the new booking's unique index
        await waitlist.expire_hold(tx, clock, own, RESCHEDULE_EXPIRY_ACTOR, offer=False)
    # The old slot is released first so that the unique index on (resident, department, day) lets a move
    # within the same department and day through.
    await repository.set_booking(tx, old.id, status="rescheduled", ended_at=now, end_reason="rescheduled",
                                 updated_at=now)
    await waitlist.give_back(tx, old.session_id, old.channel, old.slot_no, now)
    locked = await repository.session_row_at(tx, new["id"], now, lock=True)
    assert locked is not None  # noqa: S101 - read in this transaction, and sessions are not deleted
    slots = SessionSlots.of(locked)  # its lapsed holds counted free
    error = refusal(slots, rules, old.channel, now)
    if error is None and wanted is not None and not slots.take_at(old.channel, wanted):
        # Free means free in the map under the lock: a lapsed hold's slot counts free only while no one waits
        # for the session (the waitlist's otherwise), and an offered slot is held for its waiter.
        error = slot_not_free(new["id"], wanted)
    if error is not None:
        raise Refused(old.resident_id, error)
    slot_no = wanted if wanted is not None else slots.take(old.channel)
    for hold in list(slots.lapsed):  # those whose slot this move did not take stay for the sweeper
        if hold.slot_no != slot_no:
            slots.keep(hold)
    for hold in slots.lapsed:
        await _expire_lapsed(tx, clock, hold, now)
    await repository.write_slots(tx, slots, booked_before=locked["booked"], now=now, last_slot_no=slot_no)
    values: dict[str, Any] = {
        "session_id": new["id"], "organization_id": new["organization_id"], "department_id": new["department_id"],
        "service_date": new["service_date"], "starts_at": new["starts_at"], "ends_at": new["ends_at"],
        "slot_no": slot_no, "estimated_at": estimated_time(new["starts_at"], new["ends_at"], new["capacity"], slot_no),
        "resident_id": old.resident_id, "channel": old.channel, "client_app_id": old.client_app_id,
        "status": "booked", "hold_expires_at": None, "booked_at": now, "checked_in_at": None, "ended_at": None,
        "end_reason": None, "created_by": principal.subject, "created_at": now, "updated_at": now,
    }
    new_id = await repository.insert_booking(tx, values)
    await repository.set_booking(tx, old.id, rescheduled_to_id=new_id)
    await messages.rescheduled(tx, now, old, {**values, "id": new_id})
    await waitlist.promote(tx, clock, old.session_id, principal)
    # The expired holds' slots are offered now the move is written: an offer made before could go to the
    # mover and collide with their new booking.
    await waitlist.offer_freed(tx, clock, {own.session_id for own in lapsed})
    record(tx, clock, principal, Action.UPDATE, RESOURCE, resource_id=old.id, resident_ids=[old.resident_id],
           detail=f"rescheduled to {new_id}")
    return booking_read({**values, "id": new_id}).model_dump_json()


async def _expire_lapsed(tx: AsyncSession, clock: Clock, hold: LapsedHold, now: datetime) -> None:
    """Expire a lapsed hold whose slot a write takes (the session's row is locked and written by the caller)."""
    await repository.set_booking(tx, hold.booking_id, status="expired", ended_at=now, end_reason="hold_expired",
                                 updated_at=now)
    await repository.waitlist_offer_expired(tx, hold.booking_id, now)
    record(tx, clock, None, Action.UPDATE, RESOURCE, resource_id=hold.booking_id, resident_ids=[hold.resident_id],
           detail="hold expired", actor=RESCHEDULE_EXPIRY_ACTOR)


@dataclass(frozen=True)
class SweepResult:
    expired_holds: int
    offers_made: int
    idempotency_keys_purged: int


async def sweep_holds(database: Database, clock: Clock) -> SweepResult:
    """Release every hold past its expiry (and offer the slot to the waitlist); purge old idempotency keys."""
    now = clock.now()
    expired = offers = 0
    async with database.transaction() as tx:
        holds = await repository.expired_holds(tx, now, skip_locked=not database.is_sqlite)
        for booking in holds:
            if await waitlist.expire_hold(tx, clock, booking, HOLD_SWEEP_ACTOR):
                offers += 1
            expired += 1
        purged = await idempotency.purge_expired(tx, clock)
    return SweepResult(expired_holds=expired, offers_made=offers, idempotency_keys_purged=purged)


@dataclass(frozen=True)
class NoShowResult:
    no_shows: int
    residents_banned: int


async def mark_no_shows(database: Database, clock: Clock) -> NoShowResult:
    """Bookings not checked in by their session's pick-up deadline become no-shows; apply the sanction rule."""
    now = clock.now()
    async with database.transaction() as tx:
        rows = await repository.missed_bookings(tx, now)
        for booking_id, resident_id in rows:
            await repository.set_booking(tx, booking_id, status="no_show", ended_at=now, end_reason="no_show",
                                         updated_at=now)
            record(tx, clock, None, Action.UPDATE, RESOURCE, resource_id=booking_id, resident_ids=[resident_id],
                   detail="no-show", actor=NO_SHOW_ACTOR)
        banned = await sanctions.apply_no_show_rule(tx, clock, [resident_id for _, resident_id in rows])
        for resident_id in banned:
            record(tx, clock, None, Action.CREATE, "booking_sanction", resident_ids=[resident_id],
                   detail="no-show rule", actor=NO_SHOW_ACTOR)
    return NoShowResult(no_shows=len(rows), residents_banned=len(banned))
