"""Agent desk routes: the agent's open calls, identifying the caller within one, booking for them, the
call-back list of suspended clinics, knowledge-base search; and the supervisor's view."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request

from cityhealth.booking import service as booking
from cityhealth.context import ClockDep, DatabaseDep, SessionDep, SettingsDep
from cityhealth.db.types import RowId
from cityhealth.hotline import desk, desk_callbacks, desk_supervisor, knowledge_answers
from cityhealth.hotline.desk_schemas import (
    CallbackDial,
    CallbackItem,
    CallbackResult,
    CallbackResultIn,
    DeskBookIn,
    DeskBookingResult,
    DeskCall,
    DeskRescheduleIn,
    IdentifyIn,
    IdentifyResult,
    Reconciliation,
    SupervisorView,
)
from cityhealth.hotline.knowledge_index import index_of
from cityhealth.hotline.knowledge_schemas import SearchHit
from cityhealth.security.dependencies import refusals_audited, require
from cityhealth.security.principals import Principal, Scope

router = APIRouter(prefix="/api/hotline/desk", tags=["hotline"], route_class=refusals_audited("hotline_desk"))
Agent = Annotated[Principal, Depends(require(Scope.HOTLINE_CALLS))]
Booker = Annotated[Principal, Depends(require(Scope.HOTLINE_CALLS, Scope.BOOKING_WRITE))]
Searcher = Annotated[Principal, Depends(require(Scope.HOTLINE_CALLS, Scope.HOTLINE_KB_READ))]
Supervisor = Annotated[Principal, Depends(require(Scope.HOTLINE_SUPERVISE))]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", description="unique per intended request")]


def _runtime(request: Request) -> booking.BookingRuntime:
    return booking.runtime_of(request.app.state)


async def _idem(request: Request, principal: Principal, key: str | None) -> booking.IdempotencyContext:
    return booking.context_for(principal.subject, key, "POST", request.url.path, await request.body())


@router.get("/calls", response_model=list[DeskCall], summary="The agent's open calls (answered, not ended)")
async def open_calls(principal: Agent, session: SessionDep, clock: ClockDep, settings: SettingsDep) -> list[DeskCall]:
    return await desk.open_calls(session, clock, settings, principal)


@router.post("/calls/{call_id}/identify", response_model=IdentifyResult,
             summary="Identify the caller in the master index (only within the agent's own open call)")
async def identify(principal: Agent, session: SessionDep, database: DatabaseDep, clock: ClockDep,
                   settings: SettingsDep, call_id: RowId, data: IdentifyIn) -> IdentifyResult:
    return await desk.identify(session, database, clock, settings, principal, call_id, data)


@router.post("/calls/{call_id}/bookings", response_model=DeskBookingResult, status_code=201,
             summary="Book for the identified caller, channel phone (Idempotency-Key required)")
async def book(principal: Booker, request: Request, database: DatabaseDep, clock: ClockDep, settings: SettingsDep,
               call_id: RowId, data: DeskBookIn, idempotency_key: IdempotencyKey = None) -> DeskBookingResult:
    # No request transaction: the booking commits in its group commit, the link after it (desk.book).
    idem = await _idem(request, principal, idempotency_key)
    return await desk.book(database, clock, settings, _runtime(request), principal, call_id, data.session_id, idem)


@router.post("/calls/{call_id}/bookings/{booking_id}/cancel", response_model=DeskBookingResult,
             summary="Cancel one of the identified caller's bookings")
async def cancel(principal: Booker, request: Request, session: SessionDep, database: DatabaseDep, clock: ClockDep,
                 settings: SettingsDep, call_id: RowId, booking_id: RowId) -> DeskBookingResult:
    return await desk.cancel(session, database, clock, settings, _runtime(request), principal, call_id, booking_id)


@router.post("/calls/{call_id}/bookings/{booking_id}/reschedule", response_model=DeskBookingResult,
             status_code=201, summary="Move one of the identified caller's bookings (Idempotency-Key required)")
async def reschedule(principal: Booker, request: Request, session: SessionDep, database: DatabaseDep,
                     clock: ClockDep, settings: SettingsDep, call_id: RowId, booking_id: RowId,
                     data: DeskRescheduleIn, idempotency_key: IdempotencyKey = None) -> DeskBookingResult:
    idem = await _idem(request, principal, idempotency_key)
    return await desk.reschedule(session, database, clock, settings, _runtime(request), principal, call_id,
                                 booking_id, data.session_id, idem)


@router.get("/kb", response_model=list[SearchHit], summary="Search the knowledge base from the desk")
async def search_knowledge(principal: Searcher, request: Request, session: SessionDep, clock: ClockDep,
                           q: Annotated[str, Query(max_length=1000)],
                           limit: Annotated[int, Query(ge=1, le=20)] = 5) -> list[SearchHit]:
    return await knowledge_answers.search(session, clock, index_of(request.app.state), q, limit=limit)


@router.get("/callbacks", response_model=list[CallbackItem], summary="Residents to call back (停诊), masked")
async def callbacks(principal: Booker, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                    limit: Annotated[int, Query(ge=1, le=200)] = 100) -> list[CallbackItem]:
    return await desk_callbacks.callback_list(session, clock, settings, principal, limit=limit)


@router.post("/callbacks/{callback_id}/dial", response_model=CallbackDial,
             summary="The call-back action: the number to dial (revealed, audited)")
async def dial(principal: Booker, session: SessionDep, clock: ClockDep, settings: SettingsDep,
               callback_id: RowId) -> CallbackDial:
    return await desk_callbacks.dial(session, clock, settings, principal, callback_id)


@router.post("/callbacks/{callback_id}/result", response_model=CallbackResult,
             summary="Record a call-back: reached (closes it) or not reached, with a note")
async def callback_result(principal: Booker, session: SessionDep, clock: ClockDep, callback_id: RowId,
                          data: CallbackResultIn) -> CallbackResult:
    return await desk_callbacks.report(session, clock, principal, callback_id, data)


@router.get("/supervisor", response_model=SupervisorView,
            summary="Queues, agents' states and today's figures (supervisors)")
async def supervisor(principal: Supervisor, session: SessionDep, clock: ClockDep) -> SupervisorView:
    return await desk_supervisor.supervisor_view(session, clock, principal)


@router.get("/reconciliation", response_model=Reconciliation,
            summary="Phone bookings and phone_booking calls of a period, with and without each other")
async def reconciliation(principal: Supervisor, session: SessionDep, clock: ClockDep,
                         first: Annotated[date, Query()], last: Annotated[date, Query()]) -> Reconciliation:
    return await desk.reconcile(session, clock, principal, first, last)
