"""Remote diagnosis API: the networks and their members, a requester's cases, a reading centre's worklist
(queue, claim, the case, the report), consultations. Each route's object rule is in its use case."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from cityhealth.context import ClockDep, SessionDep, SettingsDep
from cityhealth.db.types import RowId
from cityhealth.security.dependencies import refusals_audited, require, require_any
from cityhealth.security.principals import Principal, Scope
from cityhealth.telemed import cases, consultations, reading, service, statistics, worklists
from cityhealth.telemed.schemas import (
    CaseDetail,
    CaseRead,
    CaseStatus,
    CaseSubmit,
    ConsultationIn,
    ConsultationRead,
    CoverageRead,
    DesignationIn,
    MemberJoin,
    MemberLeave,
    MemberRead,
    NetworkCode,
    NetworkRead,
    OpinionIn,
    RejectIn,
    RejectRead,
    ReportIn,
    ReportRead,
    StepIn,
)
from cityhealth.telemed.statistics_schemas import OpeningBalanceIn, OpeningBalanceRead
from cityhealth.telemed.workflow import OPEN_STATUSES

router = APIRouter(prefix="/api/telemed", tags=["telemed"], route_class=refusals_audited("telemed_case"))
Anyone = Annotated[Principal, Depends(require_any(Scope.TELEMED_REQUEST, Scope.TELEMED_READ, Scope.TELEMED_ADMIN))]
Admin = Annotated[Principal, Depends(require(Scope.TELEMED_ADMIN))]
Requester = Annotated[Principal, Depends(require(Scope.TELEMED_REQUEST))]
Centre = Annotated[Principal, Depends(require(Scope.TELEMED_READ))]
Member = Annotated[Principal, Depends(require_any(Scope.TELEMED_REQUEST, Scope.TELEMED_READ))]
Limit = Annotated[int, Query(ge=1, le=200)]
CASE = "/cases/{case_id}"


@router.get("/networks", response_model=list[NetworkRead], summary="The five networks, targets and members today")
async def list_networks(principal: Anyone, session: SessionDep, clock: ClockDep) -> list[NetworkRead]:
    return await service.list_networks(session, clock)


@router.get(
    "/networks/{network_code}/members",
    response_model=list[MemberRead],
    summary="A network's members on a day (today by default), or every membership it ever had",
)
async def list_members(
    principal: Anyone,
    session: SessionDep,
    clock: ClockDep,
    network_code: NetworkCode,
    on: date | None = None,
    every: bool = False,
) -> list[MemberRead]:
    return await service.list_members(session, clock, network_code, on=on, every=every)


@router.post(
    "/networks/{network_code}/members",
    response_model=MemberRead,
    summary="An organization joins a network (idempotent on network, organization and day)",
)
async def join(
    principal: Admin, session: SessionDep, clock: ClockDep, network_code: NetworkCode, data: MemberJoin
) -> MemberRead:
    return await service.join(session, clock, principal, network_code, data)


@router.post("/members/{member_id}/leave", response_model=MemberRead, summary="A member leaves its network")
async def leave(
    principal: Admin, session: SessionDep, clock: ClockDep, member_id: RowId, data: MemberLeave
) -> MemberRead:
    return await service.leave(session, clock, principal, member_id, data)


@router.put(
    "/members/{member_id}/designations",
    response_model=MemberRead,
    summary="A requester's designated reading centres, best first",
)
async def designate(
    principal: Admin, session: SessionDep, clock: ClockDep, member_id: RowId, data: DesignationIn
) -> MemberRead:
    return await service.designate(session, clock, principal, member_id, data)


@router.put(
    "/networks/{network_code}/opening-balances",
    response_model=OpeningBalanceRead,
    summary="Consultations carried over from an older platform into the network's cumulative figure (once a day)",
)
async def record_opening_balance(
    principal: Admin, session: SessionDep, clock: ClockDep, network_code: NetworkCode, data: OpeningBalanceIn
) -> OpeningBalanceRead:
    return await statistics.record_opening_balance(session, clock, principal, network_code, data)


@router.get(
    "/networks/{network_code}/coverage",
    response_model=CoverageRead,
    summary="A city's districts covered and not covered by the network's members on a day",
)
async def coverage(
    principal: Anyone,
    session: SessionDep,
    clock: ClockDep,
    network_code: NetworkCode,
    city: Annotated[str, Query(min_length=6, max_length=12)] = "320100",
    on: date | None = None,
) -> CoverageRead:
    return await service.coverage(session, clock, network_code, city, on)


@router.get(
    "/overdue",
    response_model=list[CaseRead],
    summary="Every centre's open cases past their turnaround target (administrators)",
)
async def overdue_everywhere(
    principal: Admin, session: SessionDep, clock: ClockDep, network_code: NetworkCode | None = None, limit: Limit = 100
) -> list[CaseRead]:
    return await worklists.overdue(session, clock, principal, network_code=network_code, every_centre=True, limit=limit)


@router.post(
    "/cases",
    response_model=CaseDetail,
    summary="A member submits a case, routed at once (idempotent on its external_id)",
)
async def submit(
    principal: Requester, session: SessionDep, clock: ClockDep, settings: SettingsDep, data: CaseSubmit
) -> CaseDetail:
    return await cases.submit(session, clock, settings, principal, data)


@router.get("/cases", response_model=list[CaseRead], summary="The cases the caller's organization submitted")
async def my_cases(
    principal: Requester,
    session: SessionDep,
    clock: ClockDep,
    status: CaseStatus | None = None,
    before_id: RowId | None = None,
    limit: Limit = 50,
) -> list[CaseRead]:
    return await worklists.requester_cases(session, clock, principal, status=status, before_id=before_id, limit=limit)


@router.get(
    "/worklist",
    response_model=list[CaseRead],
    summary="The reading centre's queue: cases routed to it, the soonest due first",
)
async def worklist(
    principal: Centre,
    session: SessionDep,
    clock: ClockDep,
    status: Annotated[list[CaseStatus] | None, Query()] = None,
    limit: Limit = 100,
) -> list[CaseRead]:
    return await worklists.worklist(session, clock, principal, statuses=tuple(status or OPEN_STATUSES), limit=limit)


@router.get(
    "/worklist/overdue",
    response_model=list[CaseRead],
    summary="The reading centre's open cases past their turnaround target",
)
async def overdue(
    principal: Centre, session: SessionDep, clock: ClockDep, network_code: NetworkCode | None = None, limit: Limit = 100
) -> list[CaseRead]:
    return await worklists.overdue(
        session, clock, principal, network_code=network_code, every_centre=False, limit=limit
    )


@router.get(CASE, response_model=CaseDetail, summary="A case, to its requester or the centre it is routed to")
async def get_case(principal: Member, session: SessionDep, clock: ClockDep, case_id: RowId) -> CaseDetail:
    return await cases.get_case(session, clock, principal, case_id)


@router.get(
    f"{CASE}/report", response_model=ReportRead, summary="The case's report (the requester sees it once signed)"
)
async def get_report(principal: Member, session: SessionDep, clock: ClockDep, case_id: RowId) -> ReportRead:
    return await cases.get_report(session, clock, principal, case_id)


@router.post(f"{CASE}/receive", response_model=CaseDetail, summary="The centre acknowledges the case")
async def receive(principal: Centre, session: SessionDep, clock: ClockDep, case_id: RowId, data: StepIn) -> CaseDetail:
    return await cases.receive(session, clock, principal, case_id, data)


@router.post(f"{CASE}/accept", response_model=CaseDetail, summary="The centre accepts the case into its queue")
async def accept(principal: Centre, session: SessionDep, clock: ClockDep, case_id: RowId, data: StepIn) -> CaseDetail:
    return await cases.accept(session, clock, principal, case_id, data)


@router.post(
    f"{CASE}/reject",
    response_model=RejectRead,
    summary="The centre rejects the case; it is re-routed to another centre",
)
async def reject(principal: Centre, session: SessionDep, clock: ClockDep, case_id: RowId, data: RejectIn) -> RejectRead:
    return await cases.reject(session, clock, principal, case_id, data)


@router.post(f"{CASE}/claim", response_model=CaseDetail, summary="A doctor claims the case (one holder only)")
async def claim(principal: Centre, session: SessionDep, clock: ClockDep, case_id: RowId, data: StepIn) -> CaseDetail:
    return await reading.claim(session, clock, principal, case_id, data)


@router.post(f"{CASE}/release", response_model=CaseDetail, summary="The holding doctor gives the case back")
async def release(principal: Centre, session: SessionDep, clock: ClockDep, case_id: RowId, data: StepIn) -> CaseDetail:
    return await reading.release(session, clock, principal, case_id, data)


@router.put(f"{CASE}/report", response_model=CaseDetail, summary="The holding doctor drafts the report")
async def draft_report(
    principal: Centre, session: SessionDep, clock: ClockDep, case_id: RowId, data: ReportIn
) -> CaseDetail:
    return await reading.draft(session, clock, principal, case_id, data)


@router.post(
    f"{CASE}/report/sign",
    response_model=CaseDetail,
    summary="The holding doctor signs the report: it returns to the requester, the case completes",
)
async def sign_report(
    principal: Centre, session: SessionDep, clock: ClockDep, case_id: RowId, data: ReportIn
) -> CaseDetail:
    return await reading.sign(session, clock, principal, case_id, data)


@router.post(f"{CASE}/cancel", response_model=CaseDetail, summary="The requester withdraws the case")
async def cancel(
    principal: Requester, session: SessionDep, clock: ClockDep, case_id: RowId, data: StepIn
) -> CaseDetail:
    return await cases.cancel(session, clock, principal, case_id, data)


@router.post(
    "/consultations",
    response_model=ConsultationRead,
    summary="A member schedules a consultation with other members (idempotent on request_key)",
)
async def schedule(
    principal: Requester, session: SessionDep, clock: ClockDep, data: ConsultationIn
) -> ConsultationRead:
    return await consultations.schedule(session, clock, principal, data)


@router.get(
    "/consultations/{consultation_id}",
    response_model=ConsultationRead,
    summary="A consultation, to its requester and participants",
)
async def get_consultation(
    principal: Member, session: SessionDep, clock: ClockDep, consultation_id: RowId
) -> ConsultationRead:
    return await consultations.get_consultation(session, clock, principal, consultation_id)


@router.post(
    "/consultations/{consultation_id}/opinion",
    response_model=ConsultationRead,
    summary="A participant gives the opinion, completing the consultation",
)
async def give_opinion(
    principal: Member, session: SessionDep, clock: ClockDep, consultation_id: RowId, data: OpinionIn
) -> ConsultationRead:
    return await consultations.give_opinion(session, clock, principal, consultation_id, data)
