"""Hotline call API: the telephony system's event reports, city lines, agents' calls, crisis follow-ups."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from cityhealth.context import ClockDep, SessionDep, SettingsDep
from cityhealth.db.types import RowId
from cityhealth.hotline import crisis, reporting, service
from cityhealth.hotline.schemas import (
    AnnotationIn,
    CallDetail,
    CallEventReport,
    CallEventReportResult,
    CallRead,
    CallSearch,
    CityLineIn,
    CityLineRead,
    FollowUpClose,
    FollowUpRead,
    ReclassificationIn,
)
from cityhealth.security.dependencies import refusals_audited, require
from cityhealth.security.principals import Principal, Scope

router = APIRouter(prefix="/api/hotline", tags=["hotline"], route_class=refusals_audited("hotline_call"))
Telephony = Annotated[Principal, Depends(require(Scope.HOTLINE_TELEPHONY))]
Agent = Annotated[Principal, Depends(require(Scope.HOTLINE_CALLS))]
Supervisor = Annotated[Principal, Depends(require(Scope.HOTLINE_SUPERVISE))]
CrisisTeam = Annotated[Principal, Depends(require(Scope.HOTLINE_CRISIS))]
Admin = Annotated[Principal, Depends(require(Scope.HOTLINE_ADMIN))]


@router.post("/call-events", response_model=CallEventReportResult,
             summary="Report call events (a batch; idempotent on call id and event id)")
async def report_call_events(principal: Telephony, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                             report: CallEventReport) -> CallEventReportResult:
    return await reporting.report_events(session, clock, settings, principal, report)


@router.put("/lines/{line}", response_model=CityLineRead, summary="Register or change a city line")
async def put_city_line(principal: Admin, session: SessionDep, clock: ClockDep, line: str,
                        data: CityLineIn) -> CityLineRead:
    return await service.put_city_line(session, clock, principal, line, data)


@router.get("/lines", response_model=list[CityLineRead], summary="The city lines")
async def list_city_lines(principal: Agent, session: SessionDep) -> list[CityLineRead]:
    return await service.list_city_lines(session)


@router.get("/calls", response_model=list[CallRead], summary="Calls, newest first (an agent's own)")
async def list_calls(principal: Agent, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                     before_id: Annotated[RowId | None, Query()] = None,
                     limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[CallRead]:
    return await service.list_calls(session, clock, settings, principal, before_id=before_id, limit=limit)


@router.post("/calls/search", response_model=list[CallRead], summary="A caller's calls, by number")
async def search_calls(principal: Supervisor, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                       search: CallSearch) -> list[CallRead]:
    return await service.search_by_caller(session, clock, settings, principal, search)


@router.get("/calls/{call_id}", response_model=CallDetail, summary="A call with its events and changes")
async def get_call(principal: Agent, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                   call_id: RowId) -> CallDetail:
    return await service.get_call(session, clock, settings, principal, call_id)


@router.post("/calls/{call_id}/annotations", response_model=CallDetail, summary="Annotate a call")
async def annotate_call(principal: Agent, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                        call_id: RowId, data: AnnotationIn) -> CallDetail:
    return await service.annotate(session, clock, settings, principal, call_id, data)


@router.post("/calls/{call_id}/classification", response_model=CallDetail, summary="Reclassify a call")
async def reclassify_call(principal: Agent, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                          call_id: RowId, data: ReclassificationIn) -> CallDetail:
    return await service.reclassify(session, clock, settings, principal, call_id, data)


@router.get("/crisis-follow-ups", response_model=list[FollowUpRead], summary="The crisis team's follow-ups")
async def list_follow_ups(principal: CrisisTeam, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                          status: Literal["open", "done", "cancelled"] = "open",
                          limit: Annotated[int, Query(ge=1, le=200)] = 100) -> list[FollowUpRead]:
    return await crisis.list_follow_ups(session, clock, settings, principal, status=status, limit=limit)


@router.get("/crisis-follow-ups/{follow_up_id}", response_model=FollowUpRead, summary="A crisis follow-up")
async def get_follow_up(principal: CrisisTeam, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                        follow_up_id: RowId) -> FollowUpRead:
    return await crisis.get_follow_up(session, clock, settings, principal, follow_up_id)


@router.post("/crisis-follow-ups/{follow_up_id}/close", response_model=FollowUpRead,
             summary="Close a crisis follow-up as done")
async def close_follow_up(principal: CrisisTeam, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                          follow_up_id: RowId, data: FollowUpClose) -> FollowUpRead:
    return await crisis.close_follow_up(session, clock, settings, principal, follow_up_id, data)
