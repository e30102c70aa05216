"""A booking's calendar file as the resident downloads it: from their own booking (signed in), or through the
link their SMS carries (messages_links.py), until the day after the appointment. Each download is audited as
an export."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking import messages_links, repository
from cityhealth.booking.channels import caller_of
from cityhealth.booking.messages_calendar import calendar_file
from cityhealth.booking.service import RESOURCE, owned_booking
from cityhealth.clock import Clock
from cityhealth.errors import NotFound
from cityhealth.security.audit import Action, record
from cityhealth.security.crypto import FieldCipher
from cityhealth.security.principals import Principal

LINK_LIFETIME = timedelta(days=1)  # an SMS's link opens the file until a day after the appointment's end
LINK_ACTOR = "link:booking-calendar"  # who reads a booking through its SMS link: whoever holds the link


async def booking_calendar(tx: AsyncSession, clock: Clock, cipher: FieldCipher, principal: Principal,
                           booking_id: int, host: str) -> str:
    """The caller's own booking as an .ics file (others' look like not found)."""
    booking = await owned_booking(tx, cipher, clock, caller_of(principal), booking_id, None, lock=False)
    record(tx, clock, principal, Action.EXPORT, RESOURCE, resource_id=booking.id,
           resident_ids=[booking.resident_id], detail="calendar")
    return await calendar_file(tx, clock, booking, host)


async def linked_calendar(tx: AsyncSession, clock: Clock, cipher: FieldCipher, token: str, host: str) -> str:
    """The .ics file an SMS's link names, until the day after the appointment; a token not signed here, or of a
    booking gone by, looks like not found."""
    booking_id = messages_links.booking_of(cipher, token)
    booking = None if booking_id is None else await repository.get_booking(tx, booking_id)
    if booking is None or booking.ends_at + LINK_LIFETIME < clock.now():
        raise NotFound("no calendar file at this link", code="calendar_link_not_found", field="token",
                       rule="booking.calendar_link")
    record(tx, clock, None, Action.EXPORT, RESOURCE, resource_id=booking.id, resident_ids=[booking.resident_id],
           detail="calendar by SMS link", actor=LINK_ACTOR)
    return await calendar_file(tx, clock, booking, host)
