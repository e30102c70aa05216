"""The day-before reminder: a periodic task writes one reminder per booking of tomorrow into the outbox,
once the hospital's reminder time (Asia/Shanghai, 18:00 unless it set another) has come today, and defers
the sending. A booking made after that time gets its reminder at the next round; one already reminded is
not reminded again (the outbox's unique index), however often the task runs."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from cityhealth.booking import messages_repository, notifications
from cityhealth.booking.messages import DEFAULT_REMINDER_TIME, REMINDER, appointment
from cityhealth.clock import BUSINESS_TZ, Clock, business_date
from cityhealth.db.engine import Database

PAGE = 500


def _text(hospital: str, department: str, when: str) -> str:
    return (f"【12320】就诊提醒：您已预约明天{hospital}{department}，就诊时间{when}。"
            f"请携带有效证件提前到院签到取号；如不能前往，请及时取消预约。")


async def send_reminders(database: Database, clock: Clock) -> int:
    """Queue the reminders now due for tomorrow's bookings; how many were queued."""
    now = clock.now()
    local = now.astimezone(BUSINESS_TZ).time()
    tomorrow = business_date(now) + timedelta(days=1)
    queued = 0
    while True:
        async with database.transaction() as tx:
            chosen = await messages_repository.settings_of(tx)
            not_due = {s.organization_id for s in chosen if not s.reminder_enabled or local < s.reminder_time}
            due = {s.organization_id for s in chosen} - not_due
            default_due = local >= DEFAULT_REMINDER_TIME
            if not default_due and not due:
                return queued
            rows = await messages_repository.reminders_due(
                tx, tomorrow, only=None if default_due else due, excluded=not_due, limit=PAGE)
            for row in rows:
                await messages_repository.add(tx, _reminder(row, now))
            if rows:
                await notifications.send_soon(tx)
            queued += len(rows)
        if len(rows) < PAGE:
            return queued


def _reminder(row: Any, now: datetime) -> dict[str, object]:
    return {"resident_id": row.resident_id, "booking_id": row.id, "kind": REMINDER, "status": "pending",
            "attempts": 0, "created_at": now,
            "message": _text(row.name, row.local_name, appointment(row.service_date, row.estimated_at, row.slot_no))}
