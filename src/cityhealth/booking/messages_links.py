"""The short link an SMS carries to its booking's calendar file: an SMS cannot carry the .ics itself.

The link names the booking by its number and a keyed signature of it (the platform's lookup key), nothing
else: no name, ID number or phone is in it, and no other booking's link can be made from it. It opens
without a sign-in (a resident taps it on their phone), and only until the booking's day is over.
"""

from __future__ import annotations

import hmac
from typing import Any

from cityhealth.security.crypto import FieldCipher

PATH = "/c/{token}.ics"
_PURPOSE = "booking-calendar-link"
_SIGNATURE_CHARS = 16  # 96 bits of the HMAC: not guessable, and the SMS stays short
# The messages about a booking that stands: a cancellation has no appointment left to put in a calendar.
LINKED_KINDS = frozenset({"booking_confirmed", "booking_rescheduled", "booking_reminder"})


def _signature(cipher: FieldCipher, booking_id: int) -> str:
    return cipher.lookup_hash(_PURPOSE, str(booking_id))[:_SIGNATURE_CHARS]


def token(cipher: FieldCipher, booking_id: int) -> str:
    """The link's token: the booking's number and its signature."""
    return f"{booking_id}-{_signature(cipher, booking_id)}"


def booking_of(cipher: FieldCipher, value: str) -> int | None:
    """The booking a token names, or None when it is not one this platform signed."""
    number, _, signature = value.partition("-")
    if not number.isdigit() or len(number) > 12:
        return None
    booking_id = int(number)
    return booking_id if hmac.compare_digest(signature, _signature(cipher, booking_id)) else None


def url(base_url: str, cipher: FieldCipher, booking_id: int) -> str:
    return base_url.rstrip("/") + PATH.format(token=token(cipher, booking_id))


def with_link(row: Any, cipher: FieldCipher, base_url: str) -> str:
    """The text to send for an outbox row: a booking's message ends with its calendar link (when the
    platform's public address is known)."""
    if not base_url or row.kind not in LINKED_KINDS or row.booking_id is None:
        return str(row.message)
    return f"{row.message}加入日历：{url(base_url, cipher, row.booking_id)}"
