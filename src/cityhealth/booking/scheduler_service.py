"""A scheduler's view of one of their hospital's sessions: its slots, live holds, bookings and waitlist.

Personal data is masked (name and ID number as on a clinic's screen); every resident shown is audited.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking import family_repository, repository, scheduler_repository
from cityhealth.booking.family import mask_name, masked_id_number
from cityhealth.booking.models import Booking
from cityhealth.booking.schemas import (
    SchedulerBooking,
    SchedulerSessionView,
    SchedulerSlot,
    SchedulerWaitlistEntry,
)
from cityhealth.clock import Clock
from cityhealth.errors import NotFound
from cityhealth.registry.models import Resident
from cityhealth.security.audit import Action, record
from cityhealth.security.crypto import FieldCipher
from cityhealth.security.principals import Principal

RESOURCE = "booking_session"


def _booking(cipher: FieldCipher, booking: Booking, resident: Resident) -> SchedulerBooking:
    return SchedulerBooking(id=booking.id, slot_no=booking.slot_no, status=booking.status, channel=booking.channel,
                            resident=mask_name(resident.name), resident_id_number=masked_id_number(cipher, resident),
                            hold_expires_at=booking.hold_expires_at, booked_at=booking.booked_at,
                            created_by=booking.created_by)


async def session_view(session: AsyncSession, clock: Clock, cipher: FieldCipher, principal: Principal,
                       session_id: int) -> SchedulerSessionView:
    """The session as its hospital's scheduler sees it; another hospital's session looks like 404."""
    row = await repository.session_row(session, session_id)
    if row is None or (row["organization_id"] != principal.organization_id and not principal.is_platform_admin):
        raise NotFound(f"no session {session_id}", code="session_not_found", field="session_id", value=session_id)
    now = clock.now()
    # A hold past its expiry no longer keeps its slot (the clock decides, not the sweeper): not shown.
    live = [b for b in await scheduler_repository.session_bookings(session, session_id)
            if b.status != "held" or (b.hold_expires_at is not None and b.hold_expires_at > now)]
    entries = await scheduler_repository.open_waitlist(session, session_id)
    people = await family_repository.residents(session, [b.resident_id for b in live] +
                                               [e.resident_id for e in entries])
    by_slot = {b.slot_no: b for b in live}
    slots = [SchedulerSlot.model_validate({"slot_no": n, "state": by_slot[n].status if n in by_slot else "free",
                                           "booking_id": by_slot[n].id if n in by_slot else None})
             for n in range(1, row["capacity"] + 1)]
    holds = sorted((b for b in live if b.status == "held"), key=lambda b: (b.hold_expires_at, b.id))
    waiting = 0
    waitlist = []
    for entry in entries:
        waiting += entry.status == "waiting"
        resident = people[entry.resident_id]
        waitlist.append(SchedulerWaitlistEntry(
            id=entry.id, position=waiting if entry.status == "waiting" else None, status=entry.status,
            channel=entry.channel, resident=mask_name(resident.name),
            resident_id_number=masked_id_number(cipher, resident), offered_booking_id=entry.offered_booking_id,
            created_at=entry.created_at))
    record(session, clock, principal, Action.READ, RESOURCE, resource_id=session_id, resident_ids=sorted(people),
           detail="scheduler view")
    return SchedulerSessionView(
        session_id=session_id, organization_id=row["organization_id"], department_id=row["department_id"],
        service_date=row["service_date"], starts_at=row["starts_at"], ends_at=row["ends_at"], status=row["status"],
        capacity=row["capacity"], booked=len(live), slots=slots,
        holds=[_booking(cipher, b, people[b.resident_id]) for b in holds],
        bookings=[_booking(cipher, b, people[b.resident_id]) for b in live if b.status != "held"],
        waitlist=waitlist)
