"""Records API: a clinician opens a resident's shared record (on a checked reason, or break-glass), the resident
grants consents and reads who opened the record, auditors review break-glass openings, and linkage operators
work the review queue, merge and unmerge."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from cityhealth.context import ClockDep, DatabaseDep, SessionDep, SettingsDep
from cityhealth.db.types import RowId
from cityhealth.errors import NotFound
from cityhealth.records import access, service, shared_record
from cityhealth.records.schemas import (
    AccessRead,
    BreakGlassIn,
    BreakGlassReview,
    ConsentIn,
    ConsentRead,
    LinkHistory,
    LinkRead,
    MergeIn,
    ReviewDecision,
    ReviewRead,
    SharedRecord,
    UnmergeIn,
)
from cityhealth.registry import service as registry
from cityhealth.security.audit import Action, record_now
from cityhealth.security.dependencies import refusals_audited, require
from cityhealth.security.principals import Principal, Scope

router = APIRouter(prefix="/api/records", tags=["records"])
operators = APIRouter(prefix="/api/records/linkage", tags=["records"], route_class=refusals_audited("records_link"))
Clinician = Annotated[Principal, Depends(require(Scope.RECORDS_OPEN))]
Resident = Annotated[Principal, Depends(require(Scope.RESIDENT_SELF))]
Auditor = Annotated[Principal, Depends(require(Scope.RECORDS_AUDIT))]
Operator = Annotated[Principal, Depends(require(Scope.RECORDS_LINK))]
Limit = Annotated[int, Query(ge=1, le=200)]
PAGE = 50


@router.get("/residents/{resident_id}", response_model=SharedRecord,
            summary="Open a resident's shared record (needs a reason the platform checks; else 404)")
async def open_record(principal: Clinician, session: SessionDep, database: DatabaseDep, clock: ClockDep,
                      settings: SettingsDep, resident_id: RowId,
                      before: Annotated[str | None, Query(max_length=200)] = None,
                      limit: Limit = PAGE) -> SharedRecord:
    position = shared_record.page_cursor(before)  # a malformed token is refused before anything is opened
    try:
        entry = await access.checked_opening(session, clock, principal, resident_id)
    except access.NoReason:
        await record_now(database, clock, principal, Action.DENIED, access.RESOURCE, resource_id=resident_id,
                         resident_ids=[resident_id], detail=access.refusal_detail(resident_id))
        raise
    return await shared_record.shared_record(session, registry.cipher_for(settings), resident_id, entry.id,
                                             before=position, limit=limit)


@router.post("/residents/{resident_id}/break-glass", response_model=SharedRecord,
             summary="Open a resident's shared record in an emergency (audited, listed for review)")
async def break_glass(principal: Clinician, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                      resident_id: RowId, data: BreakGlassIn) -> SharedRecord:
    entry = await access.break_glass(session, clock, principal, resident_id, data.justification)
    return await shared_record.shared_record(session, registry.cipher_for(settings), resident_id, entry.id,
                                             before=None, limit=PAGE)


@router.get("/me/access-log", response_model=list[AccessRead], summary="Who opened my shared record")
async def my_access_log(principal: Resident, session: SessionDep, clock: ClockDep,
                        before_id: Annotated[RowId | None, Query()] = None, limit: Limit = PAGE) -> list[AccessRead]:
    return await access.access_log(session, clock, principal, _own(principal), before_id=before_id, limit=limit)


@router.post("/me/consents", response_model=ConsentRead, status_code=201,
             summary="Let an organization's clinicians open my shared record for some days")
async def grant_consent(principal: Resident, session: SessionDep, clock: ClockDep, data: ConsentIn) -> ConsentRead:
    return await access.grant_consent(session, clock, principal, _own(principal), data)


@router.get("/me/consents", response_model=list[ConsentRead], summary="My consents, newest first")
async def my_consents(principal: Resident, session: SessionDep) -> list[ConsentRead]:
    return await access.consents(session, _own(principal))


@router.post("/me/consents/{consent_id}/revoke", response_model=ConsentRead, summary="End one of my consents now")
async def revoke_consent(principal: Resident, session: SessionDep, clock: ClockDep,
                         consent_id: RowId) -> ConsentRead:
    return await access.revoke_consent(session, clock, principal, _own(principal), consent_id)


@router.get("/residents/{resident_id}/access-log", response_model=list[AccessRead],
            summary="Who opened a resident's shared record (auditors)")
async def resident_access_log(principal: Auditor, session: SessionDep, clock: ClockDep, resident_id: RowId,
                              before_id: Annotated[RowId | None, Query()] = None,
                              limit: Limit = PAGE) -> list[AccessRead]:
    return await access.access_log(session, clock, principal, resident_id, before_id=before_id, limit=limit)


@router.get("/break-glass", response_model=list[AccessRead], summary="Break-glass openings, oldest first")
async def break_glass_openings(principal: Auditor, session: SessionDep, clock: ClockDep, unreviewed: bool = True,
                               limit: Limit = PAGE) -> list[AccessRead]:
    return await access.break_glass_openings(session, clock, principal, unreviewed=unreviewed, limit=limit)


@router.post("/break-glass/{entry_id}/review", response_model=AccessRead, summary="Review a break-glass opening")
async def review_break_glass(principal: Auditor, session: SessionDep, clock: ClockDep, entry_id: RowId,
                             data: BreakGlassReview) -> AccessRead:
    return await access.review_break_glass(session, clock, principal, entry_id, data.note)


@operators.get("/reviews", response_model=list[ReviewRead], summary="The review queue, oldest first")
async def reviews(principal: Operator, session: SessionDep, clock: ClockDep,
                  after_id: Annotated[RowId, Query()] = 0, limit: Limit = PAGE) -> list[ReviewRead]:
    return await service.open_reviews(session, clock, principal, after_id=after_id, limit=limit)


@operators.post("/reviews/{review_id}/{decision}", response_model=LinkRead, summary="Accept or reject a candidate")
async def decide_review(principal: Operator, session: SessionDep, clock: ClockDep, review_id: RowId,
                        decision: Literal["accept", "reject"], data: ReviewDecision) -> LinkRead:
    return await service.decide_review(session, clock, principal, review_id, accept=decision == "accept", data=data)


@operators.get("/identities", response_model=list[LinkRead],
               summary="Patient identities not linked (with the reason) or waiting in review")
async def identities(principal: Operator, session: SessionDep, clock: ClockDep,
                     status: Literal["unlinked", "review"] = "unlinked",
                     after_organization_id: Annotated[RowId | None, Query()] = None,
                     after_patient_key: Annotated[str | None, Query(max_length=80)] = None,
                     limit: Limit = PAGE) -> list[LinkRead]:
    after = ((after_organization_id, after_patient_key or "") if after_organization_id is not None else None)
    return await service.unlinked(session, clock, principal, status=status, after=after, limit=limit)


@operators.get("/identities/{organization_id}/{patient_key}", response_model=LinkHistory,
               summary="A patient identity's link and its history")
async def identity_history(principal: Operator, session: SessionDep, clock: ClockDep, organization_id: RowId,
                           patient_key: str) -> LinkHistory:
    return await service.history(session, clock, principal, organization_id, patient_key)


# The patient identity and the resident are named in the body; either may be unknown.
_NAMED_IN_BODY: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such patient identity, or no such resident"}}


@operators.post("/merge", response_model=LinkRead, responses=_NAMED_IN_BODY,
                summary="Link a patient identity to a resident by hand")
async def merge(principal: Operator, session: SessionDep, clock: ClockDep, data: MergeIn) -> LinkRead:
    return await service.merge(session, clock, principal, data)


@operators.post("/unmerge", response_model=LinkRead, responses=_NAMED_IN_BODY,
                summary="Take a patient identity off its resident (refused if it would orphan records)")
async def unmerge(principal: Operator, session: SessionDep, clock: ClockDep, data: UnmergeIn) -> LinkRead:
    return await service.unmerge(session, clock, principal, data)


def _own(principal: Principal) -> int:
    if principal.resident_id is None:  # RESIDENT_SELF is only ever given to a resident account
        raise NotFound("no shared record for this account", code="shared_record_not_found", field="resident_id")
    return principal.resident_id
