"""The scheduler's view of a session (their own hospital's only): slots, live holds, waitlist, bookings."""

from __future__ import annotations

from fastapi import APIRouter

from cityhealth.booking import scheduler_service
from cityhealth.booking.api import AuditedRoute, CipherDep, ClockDep, Scheduler
from cityhealth.booking.schemas import SchedulerSessionView
from cityhealth.context import SessionDep
from cityhealth.db.types import RowId

router = APIRouter(prefix="/api/booking/scheduler", tags=["booking"], route_class=AuditedRoute)


@router.get("/sessions/{session_id}", response_model=SchedulerSessionView,
            summary="A session as its hospital's scheduler sees it (personal data masked)")
async def session_view(principal: Scheduler, session: SessionDep, clock: ClockDep, cipher: CipherDep,
                       session_id: RowId) -> SchedulerSessionView:
    return await scheduler_service.session_view(session, clock, cipher, principal, session_id)
