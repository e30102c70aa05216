"""An appointment as an iCalendar file (RFC 5545), for the channels that can carry one (an app, the web
site, e-mail; an SMS carries a link to it instead, messages_links.py): one VEVENT in UTC, its texts escaped,
its lines folded at 75 octets, CRLF."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking import messages_links, messages_repository, repository
from cityhealth.booking.channels import caller_of
from cityhealth.booking.models import Booking
from cityhealth.booking.service import RESOURCE, owned_booking
from cityhealth.clock import BUSINESS_TZ, Clock
from cityhealth.errors import NotFound
from cityhealth.security.audit import Action, record
from cityhealth.security.crypto import FieldCipher
from cityhealth.security.principals import Principal

MEDIA_TYPE = "text/calendar; charset=utf-8"
_LINE_OCTETS = 75  # RFC 5545 §3.1: lines longer than this are folded
LINK_LIFETIME = timedelta(days=1)  # an SMS's link opens the file until a day after the appointment's end
LINK_ACTOR = "link:booking-calendar"  # who reads a booking through its SMS link: whoever holds the link


def escape_text(value: str) -> str:
    """A TEXT value (RFC 5545 §3.3.11): backslash, semicolon, comma and line breaks escaped."""
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return value.replace("\r\n", "\\n").replace("\r", "\\n").replace("\n", "\\n")


def fold(line: str) -> str:
    """A content line folded so that no line exceeds 75 octets, never inside a UTF-8 character."""
    parts: list[str] = []
    current, size, limit = "", 0, _LINE_OCTETS
    for char in line:
        octets = len(char.encode("utf-8"))
        if size + octets > limit:
            parts.append(current)
            current, size, limit = "", 0, _LINE_OCTETS - 1  # a continuation line starts with one space
        current += char
        size += octets
    parts.append(current)
    return "\r\n ".join(parts)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def event(*, uid: str, stamp: datetime, start: datetime, end: datetime, summary: str, location: str,
          description: str, cancelled: bool) -> str:
    """A VCALENDAR of one event, as the bytes of a .ics file would be decoded."""
    lines = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//cityhealth//booking//ZH", "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH", "BEGIN:VEVENT", f"UID:{escape_text(uid)}", f"DTSTAMP:{_utc(stamp)}",
        f"DTSTART:{_utc(start)}", f"DTEND:{_utc(end)}", f"SUMMARY:{escape_text(summary)}",
        f"LOCATION:{escape_text(location)}", f"DESCRIPTION:{escape_text(description)}",
        f"STATUS:{'CANCELLED' if cancelled else 'CONFIRMED'}",
    ]
    if not cancelled:
        lines += ["BEGIN:VALARM", "ACTION:DISPLAY", "TRIGGER:-PT2H", f"DESCRIPTION:{escape_text(summary)}",
                  "END:VALARM"]
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return "".join(fold(line) + "\r\n" for line in lines)


async def booking_calendar(tx: AsyncSession, clock: Clock, cipher: FieldCipher, principal: Principal,
                           booking_id: int, host: str) -> str:
    """The caller's own booking as an .ics file (others' look like not found)."""
    booking = await owned_booking(tx, cipher, clock, caller_of(principal), booking_id, None, lock=False)
    record(tx, clock, principal, Action.EXPORT, RESOURCE, resource_id=booking.id,
           resident_ids=[booking.resident_id], detail="calendar")
    return await _calendar(tx, clock, booking, host)


async def linked_calendar(tx: AsyncSession, clock: Clock, cipher: FieldCipher, token: str, host: str) -> str:
    """The .ics file an SMS's link names (messages_links.py), until the day after the appointment; a token
    not signed here, or of a booking gone by, looks like not found."""
    booking_id = messages_links.booking_of(cipher, token)
    booking = None if booking_id is None else await repository.get_booking(tx, booking_id)
    if booking is None or booking.ends_at + LINK_LIFETIME < clock.now():
        raise NotFound("no calendar file at this link", code="calendar_link_not_found", field="token",
                       rule="booking.calendar_link")
    record(tx, clock, None, Action.EXPORT, RESOURCE, resource_id=booking.id, resident_ids=[booking.resident_id],
           detail="calendar by SMS link", actor=LINK_ACTOR)
    return await _calendar(tx, clock, booking, host)


async def _calendar(tx: AsyncSession, clock: Clock, booking: Booking, host: str) -> str:
    hospital, department = await messages_repository.names(tx, booking.organization_id, booking.department_id)
    expected = booking.estimated_at.astimezone(BUSINESS_TZ)
    return event(
        uid=f"booking-{booking.id}@{host}", stamp=clock.now(), start=booking.estimated_at,
        end=max(booking.ends_at, booking.estimated_at + timedelta(minutes=1)),
        summary=f"就诊预约：{hospital} {department}", location=hospital,
        description=(f"第{booking.slot_no}号，预计{expected:%H:%M}就诊。"
                     "请携带有效证件提前到院签到取号；如不能前往，请及时取消预约。"),
        cancelled=booking.status not in ("held", "booked", "checked_in"))
