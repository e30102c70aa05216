"""The reading centre's doctors at work: claiming a case (race-free), releasing it, drafting and signing the
report, which returns it to the requester. Only the doctor holding a case writes its report."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.errors import Conflict, NotFound
from cityhealth.security.audit import Action, record
from cityhealth.security.principals import Principal
from cityhealth.telemed import repository, volumes
from cityhealth.telemed.cases import RESOURCE, becomes, detail_of, repeated, step, visible
from cityhealth.telemed.models import Case
from cityhealth.telemed.schemas import CaseDetail, ReportIn, StepIn
from cityhealth.telemed.workflow import OUTCOMES, check_step

Following = list[tuple[str, int | None]]


def _held_by_another(case: Case) -> Conflict:
    return Conflict(
        f"case {case.id} is held by another doctor",
        code="case_held",
        field="case_id",
        value=case.id,
        rule="telemed.case.one_holder",
    )


async def claim(session: AsyncSession, clock: Clock, principal: Principal, case_id: int, data: StepIn) -> CaseDetail:
    """Hold an accepted case for the calling doctor. One conditional update decides: of two doctors claiming
    at once exactly one finds the case unheld (PostgreSQL re-checks the row after the other's commit; SQLite
    runs one writer at a time), the other gets 409 case_held. The same doctor claiming again is answered
    with the case."""
    case, _ = await visible(session, principal, case_id, as_="centre")  # the object rule: routed to the caller
    residents = [case.resident_id] if case.resident_id is not None else []
    if await repeated(session, clock, principal, case, data.request_key, "claim", "claimed", same_actor=True):
        return await detail_of(session, clock, principal, case_id)
    if case.holder == principal.subject:  # claimed already, under another key: holding it is what was asked
        record(
            session,
            clock,
            principal,
            Action.UPDATE,
            RESOURCE,
            resource_id=case_id,
            resident_ids=residents,
            detail="claim; held already",
        )
        return await detail_of(session, clock, principal, case_id)
    now = clock.now()
    outcome = OUTCOMES["claim"]
    won = await repository.claim(
        session,
        case_id,
        principal.organization_id or 0,
        principal.subject,
        {"status": outcome.status, "business_status": outcome.business_status, "updated_at": now},
    )
    if not won:
        found = await repository.case(session, case_id)
        if found is None:
            raise NotFound(f"no case {case_id}", field="case_id", value=case_id)
        if found.holder is not None and found.holder != principal.subject:
            raise _held_by_another(found)
        check_step("claim", found.status, case_id)
        raise _held_by_another(found)  # routed elsewhere meanwhile: nothing left to claim
    await repository.append_event(
        session,
        {
            "case_id": case_id,
            "kind": "claimed",
            "at": now,
            "actor": principal.subject,
            "request_key": data.request_key,
            "centre_member_id": case.centre_member_id,
            "note": data.note,
            "data": {},
        },
    )
    record(
        session, clock, principal, Action.UPDATE, RESOURCE, resource_id=case_id, resident_ids=residents, detail="claim"
    )
    return await detail_of(session, clock, principal, case_id)


def _holder_only(case: Case, principal: Principal) -> None:
    if case.holder != principal.subject:
        raise _held_by_another(case)


async def release(session: AsyncSession, clock: Clock, principal: Principal, case_id: int, data: StepIn) -> CaseDetail:
    """The holding doctor gives the case back to the centre's queue (its draft stays)."""

    async def effect(case: Case, now: datetime) -> tuple[dict[str, Any], Following]:
        _holder_only(case, principal)
        return becomes(OUTCOMES["release"]) | {"holder": None}, []

    await step(session, clock, principal, case_id, "release", data.request_key, "centre", effect, note=data.note)
    return await detail_of(session, clock, principal, case_id)


async def draft(session: AsyncSession, clock: Clock, principal: Principal, case_id: int, data: ReportIn) -> CaseDetail:
    """The holding doctor writes (or rewrites) the report, unsigned: the requester does not see it yet."""

    async def effect(case: Case, now: datetime) -> tuple[dict[str, Any], Following]:
        _holder_only(case, principal)
        await _save(session, case, principal, data, now, signed=False)
        return becomes(OUTCOMES["draft"]), []

    await step(session, clock, principal, case_id, "draft", data.request_key, "centre", effect)
    return await detail_of(session, clock, principal, case_id)


async def sign(session: AsyncSession, clock: Clock, principal: Principal, case_id: int, data: ReportIn) -> CaseDetail:
    """The holding doctor signs the report as given: it returns to the requester and the case is completed."""

    async def effect(case: Case, now: datetime) -> tuple[dict[str, Any], Following]:
        _holder_only(case, principal)
        centre_organization_id = await _save(session, case, principal, data, now, signed=True)
        await repository.add_volume(
            session, case.network_code, volumes.month_of(now), centre_organization_id, reports_signed=1
        )
        return becomes(OUTCOMES["sign"]) | {"completed_at": now}, []

    await step(session, clock, principal, case_id, "sign", data.request_key, "centre", effect)
    return await detail_of(session, clock, principal, case_id)


async def _save(
    session: AsyncSession, case: Case, principal: Principal, data: ReportIn, now: datetime, *, signed: bool
) -> int:
    """Write the report; the organization of the centre it comes from."""
    if case.centre_member_id is None or case.centre_organization_id is None:  # a held case is routed
        raise Conflict(
            f"case {case.id} is routed to no centre", field="case_id", value=case.id, rule="telemed.case.routed"
        )
    await repository.save_report(
        session,
        case.id,
        {
            "centre_member_id": case.centre_member_id,
            "author": principal.subject,
            "findings": data.findings,
            "conclusion": data.conclusion,
            "written_at": now,
            "signed_at": now if signed else None,
            "signed_by": principal.subject if signed else None,
        },
    )
    return case.centre_organization_id
