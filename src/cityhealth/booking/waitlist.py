"""The waitlist of a full session: a freed slot goes on hold for the first resident waiting, who is told and
has the hold's time to confirm it (POST /bookings with the hold id)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking import notifications, repository
from cityhealth.booking.attempts import Refused, banned_error, check_caps, estimated_time
from cityhealth.booking.channels import Caller, caller_of, parse_target_resident, with_app
from cityhealth.booking.models import Booking, WaitlistEntry
from cityhealth.booking.release import ReleaseRules, rules_for
from cityhealth.booking.schemas import WaitlistCreate, WaitlistRead
from cityhealth.booking.slots import SessionSlots, is_sold_out, refusal
from cityhealth.clock import BUSINESS_TZ, Clock, business_date
from cityhealth.db.engine import Database
from cityhealth.errors import Conflict, NotFound, ValidationFailed
from cityhealth.registry.models import ClientApp, Department, Organization
from cityhealth.registry.protection import ID_NUMBER
from cityhealth.security.audit import Action, record
from cityhealth.security.crypto import FieldCipher
from cityhealth.security.principals import Principal

WAITLIST_ACTOR = "job:booking.waitlist"
EXPIRY_ACTOR = "job:booking.expire_waitlist"


async def _view(session: AsyncSession, entry: WaitlistEntry) -> WaitlistRead:
    position = None
    if entry.status == "waiting":
        position = await repository.waiting_position(session, entry)
    return WaitlistRead(id=entry.id, session_id=entry.session_id, status=entry.status, position=position,
                        offered_booking_id=entry.offered_booking_id, created_at=entry.created_at)


async def join(session: AsyncSession, clock: Clock, cipher: FieldCipher, principal: Principal,
               data: WaitlistCreate, *, caller: Caller | None = None) -> WaitlistRead:
    """Put a resident on a full session's waitlist (joining twice returns the same entry); `caller`: a
    manager acting for a family member (family.py)."""
    now = clock.now()
    caller = caller or caller_of(principal)
    target = parse_target_resident(caller, data.id_number, business_date(now))
    if caller.app_id is not None:
        app = await session.get(ClientApp, caller.app_id)
        caller = with_app(caller, app.channel if app else None, app.is_active if app else None,
                          other_channels=app.other_channels if app else None)
    # Its holds lapsed by now count free (unless someone waits already): a session full only of those is not
    # full, and the resident books instead, as the one rule says.
    row = await repository.session_row_at(session, data.session_id, now)
    if row is None or (caller.organization_id is not None and row["organization_id"] != caller.organization_id):
        raise NotFound(f"no session {data.session_id}", code="session_not_found", field="session_id",
                       value=data.session_id)
    rules = await rules_for(session, row["organization_id"])
    assert caller.channel is not None  # noqa: S101 - with_app fills it in
    # The waitlist is for a session the caller's channel could book but for its slots being gone.
    error = refusal(SessionSlots.of(row), rules, caller.channel, now)
    if error is None:
        raise Conflict("the session still has free slots: book one instead", code="session_not_full",
                       field="session_id", value=row["id"], rule="booking.waitlist_full_only")
    if not is_sold_out(error):
        raise error
    found = await repository.resident_and_ban(
        session, now=now, resident_id=caller.resident_id,
        id_number_hash=None if target is None else cipher.lookup_hash(ID_NUMBER, target.number))
    if found is None:
        raise NotFound("no master-index resident with this ID number", code="resident_not_found",
                       field="id_number", value=target.masked if target else None)
    resident_id, banned_until = found
    if banned_until is not None:
        raise banned_error(banned_until)
    existing = await repository.open_waitlist_entry(session, row["id"], resident_id)
    if existing is None:
        await _check_can_ever_book(session, row, resident_id, now)
        existing = WaitlistEntry(session_id=row["id"], resident_id=resident_id, channel=caller.channel,
                                 client_app_id=caller.app_id, status="waiting", created_by=principal.subject,
                                 created_at=now, updated_at=now)
        try:
            async with session.begin_nested():
                session.add(existing)
                await session.flush()
        except IntegrityError:  # a concurrent join of the same resident won
            existing = await repository.open_waitlist_entry(session, row["id"], resident_id)
            assert existing is not None  # noqa: S101 - the unique index refused ours for this one
    record(session, clock, principal, Action.CREATE, "booking_waitlist", resource_id=existing.id,
           resident_ids=[resident_id])
    return await _view(session, existing)


async def _check_can_ever_book(session: AsyncSession, row: dict[str, Any], resident_id: int,
                               now: datetime) -> None:
    """Refuse a resident whom an offer would skip: the caps the booking decision applies (one department a
    day, two departments a day, no overlap), counted on their bookings and holds of that day (not those
    lapsed by now: they hold nothing)."""
    day = await repository.active_day_bookings(session, resident_id, row["service_date"], now)
    violation = check_caps(day, row["department_id"], row["starts_at"], row["ends_at"])
    if violation is not None:
        raise Refused(resident_id, Conflict(
            f"cannot join the waitlist: {violation.message}; an offer could never be made to this resident",
            code=violation.code, field="session_id", value=row["id"], rule=violation.rule))


def _offer_message(hospital: str, department: str, starts_at: datetime, expires_at: datetime, hold_id: int) -> str:
    start = starts_at.astimezone(BUSINESS_TZ)
    until = expires_at.astimezone(BUSINESS_TZ)
    return (f"【12320】您候补的{hospital}{department} {start:%Y年%m月%d日 %H:%M} 的号源已为您保留"
            f"（预约单号{hold_id}）。请在北京时间{until:%Y年%m月%d日 %H:%M}前，登录12320网站或App，"
            f"在“我的预约”中点击“确认预约”；逾期未确认，号源将自动转给下一位候补者。")


async def promote(tx: AsyncSession, clock: Clock, session_id: int, principal: Principal | None) -> int | None:
    """Offer one freed slot of `session_id` to the first resident waiting; returns the hold's id, if any."""
    now = clock.now()
    row = await repository.session_row(tx, session_id, lock=True)
    if row is None or row["booked"] >= row["capacity"]:
        return None
    rules = await rules_for(tx, row["organization_id"])
    while True:
        entry = await repository.first_waiting(tx, session_id)
        if entry is None:
            return None
        hold_id = await _offer(tx, clock, row, rules, entry, now, principal)
        if hold_id is not None:
            return hold_id
        if entry.status == "waiting":  # no slot for this entry's channel: keep its place, stop here
            return None


async def _offer(tx: AsyncSession, clock: Clock, row: dict[str, Any], rules: ReleaseRules, entry: WaitlistEntry,
                 now: datetime, principal: Principal | None) -> int | None:
    banned = await repository.is_banned(tx, entry.resident_id, now)
    await repository.lock_resident_day(tx, entry.resident_id, row["service_date"])
    day = await repository.active_day_bookings(tx, entry.resident_id, row["service_date"], now)  # lapsed: none
    if banned or check_caps(day, row["department_id"], row["starts_at"], row["ends_at"]) is not None:
        entry.status, entry.updated_at = "skipped", now
        await tx.flush()
        return None
    freed = await expire_in_the_way(tx, clock, entry.resident_id, row["department_id"], row["service_date"],
                                    WAITLIST_ACTOR)
    if row["id"] in freed:  # the resident's own lapsed hold of this session gave its slot back
        row = await repository.session_row(tx, row["id"], lock=True) or row
    # The session's row is locked (promote); an offered hold takes its slot by the same rule as a booking.
    slots = SessionSlots.of(row)
    booked_before = slots.booked
    if refusal(slots, rules, entry.channel, now) is not None:
        return None
    slot_no = slots.take(entry.channel)
    await repository.write_slots(tx, slots, booked_before=booked_before, now=now, last_slot_no=slot_no)
    expires_at = now + timedelta(minutes=rules.hold_minutes)
    hold_id = await repository.insert_booking(tx, {
        "session_id": row["id"], "organization_id": row["organization_id"], "department_id": row["department_id"],
        "service_date": row["service_date"], "starts_at": row["starts_at"], "ends_at": row["ends_at"],
        "slot_no": slot_no, "estimated_at": estimated_time(row["starts_at"], row["ends_at"], row["capacity"], slot_no),
        "resident_id": entry.resident_id, "channel": entry.channel, "client_app_id": entry.client_app_id,
        "status": "held", "hold_expires_at": expires_at, "created_by": WAITLIST_ACTOR, "created_at": now,
        "updated_at": now,
    })
    await repository.waitlist_offered(tx, entry.id, hold_id, now)
    hospital = (await tx.get(Organization, row["organization_id"]))
    department = (await tx.get(Department, row["department_id"]))
    await notifications.queue(tx, resident_id=entry.resident_id, booking_id=hold_id, kind="waitlist_offer",
                              message=_offer_message(hospital.name if hospital else "",
                                                     department.local_name if department else "",
                                                     row["starts_at"], expires_at, hold_id), now=now)
    record(tx, clock, principal, Action.CREATE, "booking", resource_id=hold_id, resident_ids=[entry.resident_id],
           detail="waitlist offer", actor=None if principal else WAITLIST_ACTOR)
    await tx.refresh(entry)
    await offer_freed(tx, clock, freed)  # this session's too: the slot the lapsed hold gave back is the next's
    return hold_id


# --- Lapsed holds: expired, their slots given back (and offered) ------------------------------------------------


async def give_back(tx: AsyncSession, session_id: int, channel: str, slot_no: int, now: datetime) -> None:
    """Give a booking's slot back to its session's pool (nothing when it was given back already)."""
    row = await repository.session_row(tx, session_id, lock=True)
    assert row is not None  # noqa: S101 - a foreign key
    slots = SessionSlots.of(row)
    booked_before = slots.booked
    if slots.give_back(channel, slot_no):
        await repository.write_slots(tx, slots, booked_before=booked_before, now=now)


async def expire_hold(tx: AsyncSession, clock: Clock, booking: Booking, actor: str, *, offer: bool = True) -> bool:
    """Expire a lapsed hold, give its slot back and (`offer`) offer it to the waitlist; True when an offer was
    made."""
    now = clock.now()
    await repository.set_booking(tx, booking.id, status="expired", ended_at=now, end_reason="hold_expired",
                                 updated_at=now)
    await repository.waitlist_offer_expired(tx, booking.id, now)
    await give_back(tx, booking.session_id, booking.channel, booking.slot_no, now)
    offered = offer and await promote(tx, clock, booking.session_id, None) is not None
    record(tx, clock, None, Action.UPDATE, "booking", resource_id=booking.id, resident_ids=[booking.resident_id],
           detail="hold expired", actor=actor)
    return offered


async def expire_in_the_way(tx: AsyncSession, clock: Clock, resident_id: int, department_id: int, day: date,
                            actor: str) -> set[int]:
    """Expire the resident's holds of the department and day lapsed by now, which the unique index on
    (resident, department, day) would set against a new booking of theirs there (the caps no longer count
    them); the sessions whose slots came back. Their waitlists are offered by the caller once its own booking
    is written (offer_freed): an offer made before could go to this very resident and collide with it."""
    freed = set()
    for hold in await repository.lapsed_day_holds(tx, resident_id, day, clock.now()):
        if hold.department_id == department_id:
            await expire_hold(tx, clock, hold, actor, offer=False)
            freed.add(hold.session_id)
    return freed


async def expire_lapsed_holds(tx: AsyncSession, clock: Clock, booking_ids: Iterable[int], actor: str) -> list[int]:
    """Expire those of these holds still held and lapsed by now (a writer about to book their residents found
    them lapsed: the unique index on (resident, department, day) would set them against the new booking); the
    sessions whose slots came back, for offer_freed once the booking is written."""
    now = clock.now()
    freed: set[int] = set()
    for booking_id in sorted(set(booking_ids)):
        hold = await repository.get_booking(tx, booking_id, lock=True)
        if (hold is not None and hold.status == "held" and hold.hold_expires_at is not None
                and hold.hold_expires_at <= now):
            await expire_hold(tx, clock, hold, actor, offer=False)
            freed.add(hold.session_id)
    return sorted(freed)


async def offer_freed(tx: AsyncSession, clock: Clock, session_ids: Iterable[int]) -> None:
    """Offer the slots that expiring lapsed holds gave back to these sessions' waitlists."""
    for session_id in sorted(set(session_ids)):
        await promote(tx, clock, session_id, None)


# --- A resident's entries: list, leave; and the entries that can no longer be offered ----------------------


def _resident_of(principal: Principal) -> int:
    if principal.resident_id is None:
        raise ValidationFailed("only a resident lists and leaves their own waitlist entries", code="resident_only",
                               field="principal", rule="booking.waitlist_own")
    return principal.resident_id


async def own_entries(session: AsyncSession, clock: Clock, principal: Principal, *,
                      resident_id: int | None = None, detail: str | None = None) -> list[WaitlistRead]:
    """A resident's own waitlist entries (the latest 200), the latest first; `resident_id`: a family member's,
    listed by their manager (family.py)."""
    resident_id = resident_id if resident_id is not None else _resident_of(principal)
    views = [await _view(session, entry) for entry in await repository.resident_waitlist(session, resident_id)]
    record(session, clock, principal, Action.LIST, "booking_waitlist", resident_ids=[resident_id], detail=detail)
    return views


async def leave(session: AsyncSession, clock: Clock, principal: Principal, entry_id: int, *,
                resident_id: int | None = None) -> WaitlistRead:
    """Leave a waitlist (leaving again returns the entry as it is); an offer is declined by cancelling its hold.
    `resident_id`: a family member's entry, left by their manager (family.py)."""
    resident_id = resident_id if resident_id is not None else _resident_of(principal)
    entry = await repository.get_waitlist_entry(session, entry_id, lock=True)
    if entry is None or entry.resident_id != resident_id:
        raise NotFound(f"no waitlist entry {entry_id}", code="waitlist_entry_not_found", field="entry_id",
                       value=entry_id)
    if entry.status == "offered":
        raise Conflict(f"a slot is on hold for this entry: cancel the hold (booking {entry.offered_booking_id}) "
                       "to decline it", code="waitlist_offer_pending", field="entry_id", value=entry_id,
                       rule="booking.waitlist_leave_waiting")
    if entry.status == "waiting":
        await repository.set_waitlist_status(session, [entry.id], "cancelled", clock.now())
        await session.refresh(entry)
    record(session, clock, principal, Action.UPDATE, "booking_waitlist", resource_id=entry.id,
           resident_ids=[resident_id], detail="left")
    return await _view(session, entry)


# The refusals that stay true as time goes on: an entry its channel can no longer book is never offered.
_CLOSED_FOR_GOOD = frozenset({"session_past", "same_day_not_allowed", "next_day_closed"})


async def expire_waiting(database: Database, clock: Clock) -> int:
    """Expire the waiting entries whose session the one booking rule now refuses to their channel for good
    (it started, or its hospital's cut-off passed); how many. Only sessions of up to tomorrow can be closed."""
    now = clock.now()
    async with database.transaction() as tx:
        waiting = await repository.waiting_until(tx, business_date(now) + timedelta(days=1))
        rows: dict[int, dict[str, Any] | None] = {}
        rules: dict[int, ReleaseRules] = {}
        closed: dict[int, int] = {}
        for entry_id, session_id, channel, resident_id in waiting:
            if session_id not in rows:
                rows[session_id] = await repository.session_row(tx, session_id)
            row = rows[session_id]
            if row is None:
                continue
            if row["organization_id"] not in rules:
                rules[row["organization_id"]] = await rules_for(tx, row["organization_id"])
            error = refusal(SessionSlots.of(row), rules[row["organization_id"]], channel, now)
            if error is not None and error.code in _CLOSED_FOR_GOOD:
                closed[entry_id] = resident_id
        expired = await repository.set_waitlist_status(tx, list(closed), "expired", now)
        for entry_id, resident_id in closed.items():
            record(tx, clock, None, Action.UPDATE, "booking_waitlist", resource_id=entry_id,
                   resident_ids=[resident_id], detail="waitlist entry expired", actor=EXPIRY_ACTOR)
    return expired
