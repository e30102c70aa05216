"""Remote pathology API: the network's experts and doctors, pathology cases (whose workflow and report are the
generic case's, under /api/telemed/cases), case-discussion meetings, video lectures and the bulletin's
cumulative figures. Each route's object rule is in its use case."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime

from cityhealth.context import ClockDep, SessionDep, SettingsDep
from cityhealth.db.types import RowId
from cityhealth.security.dependencies import refusals_audited, require, require_any
from cityhealth.security.principals import Principal, Scope
from cityhealth.telemed import pathology, pathology_meetings, pathology_statistics
from cityhealth.telemed.pathology_schemas import (
    EventCancel,
    EventStatus,
    LectureHold,
    LectureIn,
    LectureRead,
    MeetingHold,
    MeetingIn,
    MeetingRead,
    PathologyCaseIn,
    PathologyCaseRead,
    PathologyTotals,
    PersonDeactivate,
    PersonIn,
    PersonKind,
    PersonRead,
)

router = APIRouter(
    prefix="/api/telemed/pathology", tags=["telemed"], route_class=refusals_audited("telemed_pathology")
)
Anyone = Annotated[Principal, Depends(require_any(Scope.TELEMED_REQUEST, Scope.TELEMED_READ, Scope.TELEMED_ADMIN))]
Admin = Annotated[Principal, Depends(require(Scope.TELEMED_ADMIN))]
Requester = Annotated[Principal, Depends(require(Scope.TELEMED_REQUEST))]
Member = Annotated[Principal, Depends(require_any(Scope.TELEMED_REQUEST, Scope.TELEMED_READ))]
Limit = Annotated[int, Query(ge=1, le=200)]
MEETING = "/meetings/{meeting_id}"
LECTURE = "/lectures/{lecture_id}"


@router.post("/people", response_model=PersonRead, summary="Register an expert or doctor (idempotent on its key)")
async def register_person(principal: Anyone, session: SessionDep, clock: ClockDep, data: PersonIn) -> PersonRead:
    return await pathology.register_person(session, clock, principal, data)


@router.get("/people", response_model=list[PersonRead], summary="The network's roll of experts and doctors")
async def list_people(
    principal: Anyone,
    session: SessionDep,
    clock: ClockDep,
    kind: PersonKind | None = None,
    organization_id: RowId | None = None,
    active: bool | None = True,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> list[PersonRead]:
    return await pathology.list_people(
        session, clock, kind=kind, organization_id=organization_id, active=active, limit=limit
    )


@router.post(
    "/people/{person_id}/deactivate", response_model=PersonRead, summary="An expert or doctor leaves the roll"
)
async def deactivate_person(
    principal: Anyone, session: SessionDep, clock: ClockDep, person_id: RowId, data: PersonDeactivate
) -> PersonRead:
    return await pathology.deactivate_person(session, clock, principal, person_id, data)


@router.post(
    "/cases",
    response_model=PathologyCaseRead,
    summary="A member hospital submits a pathology case, routed at once (idempotent on its external_id)",
)
async def submit_case(
    principal: Requester, session: SessionDep, clock: ClockDep, settings: SettingsDep, data: PathologyCaseIn
) -> PathologyCaseRead:
    return await pathology.submit_case(session, clock, settings, principal, data)


@router.get(
    "/cases/{case_id}",
    response_model=PathologyCaseRead,
    summary="A pathology case with its specimen and slides, to its requester or the centre it is routed to",
)
async def get_case(principal: Member, session: SessionDep, clock: ClockDep, case_id: RowId) -> PathologyCaseRead:
    return await pathology.get_case(session, clock, principal, case_id)


@router.post(
    "/meetings", response_model=MeetingRead, summary="Schedule a case-discussion meeting (idempotent on request_key)"
)
async def schedule_meeting(principal: Member, session: SessionDep, clock: ClockDep, data: MeetingIn) -> MeetingRead:
    return await pathology_meetings.schedule_meeting(session, clock, principal, data)


@router.get(
    "/meetings",
    response_model=list[MeetingRead],
    summary="The meetings the caller's organization organizes or takes part in, the newest first",
)
async def my_meetings(
    principal: Member,
    session: SessionDep,
    clock: ClockDep,
    status: EventStatus | None = None,
    before_id: RowId | None = None,
    limit: Limit = 50,
) -> list[MeetingRead]:
    return await pathology_meetings.my_meetings(
        session, clock, principal, status=status, before_id=before_id, limit=limit
    )


@router.get(MEETING, response_model=MeetingRead, summary="A meeting, to its organizer and participants")
async def get_meeting(principal: Member, session: SessionDep, clock: ClockDep, meeting_id: RowId) -> MeetingRead:
    return await pathology_meetings.get_meeting(session, clock, principal, meeting_id)


@router.post(f"{MEETING}/hold", response_model=MeetingRead, summary="The organizer records the meeting held")
async def hold_meeting(
    principal: Member, session: SessionDep, clock: ClockDep, meeting_id: RowId, data: MeetingHold
) -> MeetingRead:
    return await pathology_meetings.hold_meeting(session, clock, principal, meeting_id, data)


@router.post(f"{MEETING}/cancel", response_model=MeetingRead, summary="The organizer cancels the meeting")
async def cancel_meeting(
    principal: Member, session: SessionDep, clock: ClockDep, meeting_id: RowId, data: EventCancel
) -> MeetingRead:
    return await pathology_meetings.cancel_meeting(session, clock, principal, meeting_id, data)


@router.post("/lectures", response_model=LectureRead, summary="Schedule a video lecture (idempotent on request_key)")
async def schedule_lecture(principal: Member, session: SessionDep, clock: ClockDep, data: LectureIn) -> LectureRead:
    return await pathology_meetings.schedule_lecture(session, clock, principal, data)


@router.get("/lectures", response_model=list[LectureRead], summary="The network's lectures, the newest first")
async def list_lectures(
    principal: Anyone,
    session: SessionDep,
    clock: ClockDep,
    status: EventStatus | None = None,
    before_id: RowId | None = None,
    limit: Limit = 50,
) -> list[LectureRead]:
    return await pathology_meetings.list_lectures(
        session, clock, principal, status=status, before_id=before_id, limit=limit
    )


@router.get(LECTURE, response_model=LectureRead, summary="A lecture, to every member of the network")
async def get_lecture(principal: Anyone, session: SessionDep, clock: ClockDep, lecture_id: RowId) -> LectureRead:
    return await pathology_meetings.get_lecture(session, clock, principal, lecture_id)


@router.post(f"{LECTURE}/hold", response_model=LectureRead, summary="The organizer records the lecture given")
async def hold_lecture(
    principal: Member, session: SessionDep, clock: ClockDep, lecture_id: RowId, data: LectureHold
) -> LectureRead:
    return await pathology_meetings.hold_lecture(session, clock, principal, lecture_id, data)


@router.post(f"{LECTURE}/cancel", response_model=LectureRead, summary="The organizer cancels the lecture")
async def cancel_lecture(
    principal: Member, session: SessionDep, clock: ClockDep, lecture_id: RowId, data: EventCancel
) -> LectureRead:
    return await pathology_meetings.cancel_lecture(session, clock, principal, lecture_id, data)


@router.get(
    "/totals", response_model=PathologyTotals, summary="The network's cumulative figures at a moment (the bulletin's)"
)
async def totals(
    principal: Admin,
    session: SessionDep,
    until: AwareDatetime,
    city: Annotated[str, Query(min_length=6, max_length=12)] = "320100",
) -> PathologyTotals:
    return await pathology_statistics.pathology_totals(session, city, until)
