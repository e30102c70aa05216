"""The messages every booking gets: a confirmation when it is made, a cancellation when it is cancelled, one
message when it is moved (the day-before reminder is reminders.py; each hospital's settings for them,
messages_settings.py).

Each message is an outbox row (notifications.py) written in the transaction that makes or cancels the
booking, once per booking and kind (a unique index: a retried or replayed write adds nothing), and sent by
the task deferred with it. Texts name the hospital, the department, the day and the slot: never an ID
number, never a phone number.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking import messages_repository, notifications
from cityhealth.clock import BUSINESS_TZ

CONFIRMED = "booking_confirmed"
CANCELLED = "booking_cancelled"
RESCHEDULED = "booking_rescheduled"
REMINDER = "booking_reminder"
DEFAULT_REMINDER_TIME = time(18, 0)


def _field(booking: Any, name: str) -> Any:
    return booking[name] if isinstance(booking, dict) else getattr(booking, name)


def appointment(service_date: date, estimated_at: datetime, slot_no: int) -> str:
    """"2022年06月17日 08:48（第3号）": the day and the slot's expected time, Asia/Shanghai."""
    return f"{service_date:%Y年%m月%d日} {estimated_at.astimezone(BUSINESS_TZ):%H:%M}（第{slot_no}号）"


def _rows(bookings: list[Any], head: str, tail: str) -> list[dict[str, Any]]:
    return [{"resident_id": _field(b, "resident_id"), "booking_id": _field(b, "id"),
             "organization_id": _field(b, "organization_id"), "department_id": _field(b, "department_id"),
             "head": head,
             "tail": tail.format(when=appointment(_field(b, "service_date"), _field(b, "estimated_at"),
                                                  _field(b, "slot_no")))}
            for b in bookings]


async def booked(tx: AsyncSession, now: datetime, bookings: list[Any]) -> None:
    """Confirmations of bookings just made (booked, not held), unless their hospital turned them off, and the
    sending task deferred with them, so a confirmation leaves within seconds of its booking's commit.

    The group commit calls this once per batch: the task is one queue row per batch that books (its lock lets
    one run at a time, and a run sends all that is pending); the losers' attempts, most of a release's
    requests, defer nothing."""
    if not bookings:
        return
    await messages_repository.add_named(tx, CONFIRMED, "confirmation_enabled", _rows(
        bookings, "【12320】预约成功：",
        "，就诊时间{when}。请于就诊当日携带有效证件按时到院签到取号；如需取消，请在医院规定的退号时间前办理。"), now)
    await notifications.send_soon(tx)


async def cancelled(tx: AsyncSession, now: datetime, booking: Any) -> None:
    """The cancellation of a booking (a hold that ends was never confirmed to the resident: no message)."""
    if _field(booking, "status") != "booked":
        return
    await messages_repository.add_named(tx, CANCELLED, "cancellation_enabled", _rows(
        [booking], "【12320】取消成功：您预约的",
        " {when} 已取消，号源已释放。如需就诊，请重新预约。"), now)
    await notifications.send_soon(tx)


async def rescheduled(tx: AsyncSession, now: datetime, old: Any, new: Any) -> None:
    """One message for a move (keyed by the new booking): the new time, and that the old slot is released; sent
    unless the hospital turned confirmations off (a move confirms the new booking)."""
    released = appointment(_field(old, "service_date"), _field(old, "estimated_at"), _field(old, "slot_no"))
    await messages_repository.add_named(tx, RESCHEDULED, "confirmation_enabled", _rows(
        [new], "【12320】改约成功：",
        "，新的就诊时间{when}；原预约 " + released + " 已取消，号源已释放。"
        "请于就诊当日携带有效证件按时到院签到取号。"), now)
    await notifications.send_soon(tx)
