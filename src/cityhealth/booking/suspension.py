"""Clinic suspension (停诊): one transaction cancels the session's bookings, queues one message per patient
and puts every patient on the hotline's call-back list; the hotline works that list."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking import notifications, repository
from cityhealth.booking.availability import BookingRuntime
from cityhealth.booking.models import (
    BookingSession,
    Callback,
)
from cityhealth.booking.schemas import CallbackRead, SuspendResult
from cityhealth.clock import BUSINESS_TZ, Clock
from cityhealth.errors import NotFound
from cityhealth.registry.models import Department, Organization
from cityhealth.security.audit import Action, record
from cityhealth.security.principals import Principal, Scope

REASON = "session_suspended"


def _message(hospital: str, department: str, session: BookingSession) -> str:
    start = session.starts_at.astimezone(BUSINESS_TZ)
    return (f"【12320】您预约的{hospital}{department} {start:%m月%d日 %H:%M} 因停诊已取消，"
            "如需改约请使用原预约渠道或致电12320。")


def _may_schedule(principal: Principal, organization_id: int) -> bool:
    if principal.has(Scope.BOOKING_ADMIN):
        return True
    return principal.has(Scope.BOOKING_SCHEDULE) and principal.organization_id == organization_id


async def suspend_session(session: AsyncSession, clock: Clock, runtime: BookingRuntime, principal: Principal,
                          session_id: int, reason: str) -> SuspendResult:
    """Suspend a session; suspending it again changes nothing and reports the same counts."""
    now = clock.now()
    row = await repository.get_booking_session(session, session_id, lock=True)
    if row is None or not _may_schedule(principal, row.organization_id):
        raise NotFound(f"no session {session_id}", code="session_not_found", field="session_id", value=session_id)
    if row.status != "suspended":
        bookings = await repository.active_session_bookings(session, session_id)
        hospital = await session.get(Organization, row.organization_id)
        department = await session.get(Department, row.department_id)
        message = _message(hospital.name if hospital else "", department.local_name if department else "", row)
        await repository.suspend(session, row, reason, REASON, now)
        told: set[int] = set()
        for booking in bookings:
            if booking.resident_id not in told:  # one message per patient, however many slots they held
                told.add(booking.resident_id)
                await notifications.queue(session, resident_id=booking.resident_id, booking_id=booking.id,
                                          kind=REASON, message=message, now=now)
            session.add(Callback(booking_id=booking.id, resident_id=booking.resident_id, session_id=session_id,
                                 reason=REASON, status="open", created_at=now))
        await session.flush()
        record(session, clock, principal, Action.UPDATE, "booking", resource_id=f"session:{session_id}",
               resident_ids=sorted(told), detail=f"session suspended: {reason}")
        runtime.availability.invalidate()
    return await _result(session, session_id)


async def _result(session: AsyncSession, session_id: int) -> SuspendResult:
    cancelled, queued, callbacks = await repository.suspension_counts(session, session_id, REASON)
    return SuspendResult(session_id=session_id, status="suspended", cancelled_bookings=cancelled,
                         notifications_queued=queued, callbacks_created=callbacks)


async def close_callback(session: AsyncSession, clock: Clock, principal: Principal, callback_id: int,
                         note: str | None) -> CallbackRead:
    row = await session.get(Callback, callback_id, with_for_update=True)
    if row is None:
        raise NotFound(f"no call-back {callback_id}", code="callback_not_found", field="callback_id",
                       value=callback_id)
    if row.status != "done":
        row.status, row.note, row.done_by, row.done_at = "done", note, principal.subject, clock.now()
        await session.flush()
    record(session, clock, principal, Action.UPDATE, "booking_callback", resource_id=row.id,
           resident_ids=[row.resident_id])
    return CallbackRead.model_validate(row)
