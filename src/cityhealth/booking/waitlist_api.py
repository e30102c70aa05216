"""A resident's waitlist entries: list them, leave one (joining is POST /api/booking/waitlist)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from cityhealth.booking import waitlist
from cityhealth.booking.schemas import WaitlistRead
from cityhealth.context import ClockDep, SessionDep
from cityhealth.db.types import RowId
from cityhealth.security.dependencies import refusals_audited, require
from cityhealth.security.principals import Principal, Scope

router = APIRouter(prefix="/api/booking", tags=["booking"], route_class=refusals_audited("booking_waitlist"))
Reader = Annotated[Principal, Depends(require(Scope.BOOKING_READ))]
Writer = Annotated[Principal, Depends(require(Scope.BOOKING_WRITE))]


@router.get("/waitlist", response_model=list[WaitlistRead], summary="A resident's own waitlist entries")
async def list_my_waitlist(principal: Reader, session: SessionDep, clock: ClockDep) -> list[WaitlistRead]:
    return await waitlist.own_entries(session, clock, principal)


@router.post("/waitlist/{entry_id}/leave", response_model=WaitlistRead, summary="Leave a waitlist")
async def leave_waitlist(principal: Writer, session: SessionDep, clock: ClockDep,
                         entry_id: RowId) -> WaitlistRead:
    return await waitlist.leave(session, clock, principal, entry_id)
