"""A resident's waitlist entries: list them, leave one (joining is POST /api/booking/waitlist)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.routing import APIRoute

from cityhealth.booking import waitlist
from cityhealth.booking.schemas import WaitlistRead
from cityhealth.context import ClockDep, SessionDep
from cityhealth.db.types import RowId
from cityhealth.errors import DomainError
from cityhealth.security.audit import Action, Outcome, record_now
from cityhealth.security.dependencies import require
from cityhealth.security.principals import Principal, Scope


class DeniedAudited(APIRoute):
    """A refusal (the request's transaction rolls back) leaves its audit event in a transaction of its own."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def audited(request: Request) -> Response:
            try:
                return await handler(request)
            except DomainError as error:
                principal: Principal | None = getattr(request.state, "principal", None)
                if principal is not None and error.code != "insufficient_scope":  # `require` audited its own
                    denied = error.status in (403, 404)
                    await record_now(request.app.state.database, request.app.state.clock, principal,
                                     Action.DENIED if denied else Action.UPDATE, "booking_waitlist",
                                     resident_ids=[principal.resident_id] if principal.resident_id else [],
                                     outcome=Outcome.DENIED if denied else Outcome.FAILURE, detail=error.code)
                raise

        return audited


router = APIRouter(prefix="/api/booking", tags=["booking"], route_class=DeniedAudited)
Reader = Annotated[Principal, Depends(require(Scope.BOOKING_READ))]
Writer = Annotated[Principal, Depends(require(Scope.BOOKING_WRITE))]


@router.get("/waitlist", response_model=list[WaitlistRead], summary="A resident's own waitlist entries")
async def list_my_waitlist(principal: Reader, session: SessionDep, clock: ClockDep) -> list[WaitlistRead]:
    return await waitlist.own_entries(session, clock, principal)


@router.post("/waitlist/{entry_id}/leave", response_model=WaitlistRead, summary="Leave a waitlist")
async def leave_waitlist(principal: Writer, session: SessionDep, clock: ClockDep,
                         entry_id: RowId) -> WaitlistRead:
    return await waitlist.leave(session, clock, principal, entry_id)
