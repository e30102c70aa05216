"""An appointment as an iCalendar file (RFC 5545): events in UTC, their texts escaped, their lines folded at 75
octets, CRLF. The channels that can carry a file get it with the message itself (an app's message centre,
e-mail: notifications.py); an SMS carries a link to it instead (messages_links.py), and the resident can
download it from their booking (messages_downloads.py).

A file holds the booking's event; a reschedule's also holds the booking it replaced, cancelled (the same UID
as the confirmation that put it in the calendar), so that one file moves the appointment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking import messages_repository
from cityhealth.booking.models import Booking
from cityhealth.clock import BUSINESS_TZ, Clock

MEDIA_TYPE = "text/calendar; charset=utf-8"
_LINE_OCTETS = 75  # RFC 5545 §3.1: lines longer than this are folded
LIVE_STATUSES = ("held", "booked", "checked_in")  # a booking in any other state is a cancelled event


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


@dataclass(frozen=True)
class Event:
    uid: str
    stamp: datetime
    start: datetime
    end: datetime
    summary: str
    location: str
    description: str
    cancelled: bool


def _vevent(item: Event) -> list[str]:
    lines = [
        "BEGIN:VEVENT", f"UID:{escape_text(item.uid)}", f"DTSTAMP:{_utc(item.stamp)}", f"DTSTART:{_utc(item.start)}",
        f"DTEND:{_utc(item.end)}", f"SUMMARY:{escape_text(item.summary)}", f"LOCATION:{escape_text(item.location)}",
        f"DESCRIPTION:{escape_text(item.description)}", f"STATUS:{'CANCELLED' if item.cancelled else 'CONFIRMED'}",
    ]
    if not item.cancelled:
        lines += ["BEGIN:VALARM", "ACTION:DISPLAY", "TRIGGER:-PT2H", f"DESCRIPTION:{escape_text(item.summary)}",
                  "END:VALARM"]
    return [*lines, "END:VEVENT"]


def calendar(events: Sequence[Event]) -> str:
    """A VCALENDAR of `events`, as the bytes of a .ics file would be decoded."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//cityhealth//booking//ZH", "CALSCALE:GREGORIAN",
             "METHOD:PUBLISH"]
    lines += [line for item in events for line in _vevent(item)]
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)


def event(*, uid: str, stamp: datetime, start: datetime, end: datetime, summary: str, location: str,
          description: str, cancelled: bool) -> str:
    """A VCALENDAR of one event."""
    return calendar([Event(uid, stamp, start, end, summary, location, description, cancelled)])


def host_of(public_base_url: str) -> str:
    """The host part of the events' UIDs: the platform's public address's."""
    return urlsplit(public_base_url).hostname or "cityhealth"


def file_name(booking_id: int) -> str:
    return f"booking-{booking_id}.ics"


def booking_event(booking: Booking, hospital: str, department: str, stamp: datetime, host: str) -> Event:
    """The booking's event as it stands (cancelled unless it is live)."""
    expected = booking.estimated_at.astimezone(BUSINESS_TZ)
    return Event(
        uid=f"booking-{booking.id}@{host}", stamp=stamp, start=booking.estimated_at,
        end=max(booking.ends_at, booking.estimated_at + timedelta(minutes=1)),
        summary=f"就诊预约：{hospital} {department}", location=hospital,
        description=(f"第{booking.slot_no}号，预计{expected:%H:%M}就诊。"
                     "请携带有效证件提前到院签到取号；如不能前往，请及时取消预约。"),
        cancelled=booking.status not in LIVE_STATUSES)


async def calendar_file(tx: AsyncSession, clock: Clock, booking: Booking, host: str) -> str:
    """The booking's .ics file as it stands now (unaudited: the caller audits the export)."""
    hospital, department = await messages_repository.names(tx, booking.organization_id, booking.department_id)
    return calendar([booking_event(booking, hospital, department, clock.now(), host)])
