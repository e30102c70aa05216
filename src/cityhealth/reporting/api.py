"""The bulletin's API for its editor (audited): the publication profile, and issues drafted, published, corrected."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header
from fastapi.responses import Response

from cityhealth.context import ClockDep, SessionDep
from cityhealth.db.types import RowId
from cityhealth.errors import ValidationFailed
from cityhealth.reporting import issues, profiles
from cityhealth.reporting.schemas import (
    CorrectionIn,
    IssueDraftIn,
    IssueRead,
    PublicationProfileIn,
    PublicationProfileRead,
)
from cityhealth.reporting.service import Edition
from cityhealth.security.dependencies import refusals_audited, require
from cityhealth.security.principals import Principal, Scope

router = APIRouter(prefix="/api/bulletin", tags=["bulletin"], route_class=refusals_audited(profiles.RESOURCE))
Editor = Annotated[Principal, Depends(require(Scope.BULLETIN_EDIT))]


def _version(if_match: str | None) -> int | None:
    """If-Match: "3" (the version the editor read) → 3; absent → None (no check)."""
    if if_match is None:
        return None
    text = if_match.strip().removeprefix("W/").strip('"')
    if not text.isdigit() or len(text) > 9:
        raise ValidationFailed("If-Match carries the profile's version, a number", field="If-Match",
                               value=if_match, rule="bulletin.profile.if_match")
    return int(text)


@router.get("/profiles/{region_code}", response_model=PublicationProfileRead,
            summary="A region's publication profile (the footer block of its bulletin)")
async def get_profile(principal: Editor, session: SessionDep, clock: ClockDep,
                      region_code: str) -> PublicationProfileRead:
    return await profiles.get_profile(session, clock, principal, region_code)


@router.put("/profiles/{region_code}", response_model=PublicationProfileRead,
            summary="Create or change a region's publication profile (the same body again changes nothing)")
async def put_profile(principal: Editor, session: SessionDep, clock: ClockDep, region_code: str,
                      data: PublicationProfileIn,
                      if_match: Annotated[str | None, Header(max_length=32)] = None) -> PublicationProfileRead:
    return await profiles.put_profile(session, clock, principal, region_code, data,
                                      expected_version=_version(if_match))


@router.put("/issues", response_model=IssueRead,
            summary="Draft a month's issue, or rewrite its draft (numbers continue from the last published issue)")
async def draft_issue(principal: Editor, session: SessionDep, clock: ClockDep, data: IssueDraftIn) -> IssueRead:
    return await issues.draft_issue(session, clock, principal, data)


@router.post("/issues/{issue_id}/publish", response_model=IssueRead,
             summary="Publish an issue: its editions archived with their SHA-256 and frozen (again: no change)")
async def publish_issue(principal: Editor, session: SessionDep, clock: ClockDep, issue_id: RowId) -> IssueRead:
    return await issues.publish_issue(session, clock, principal, issue_id)


@router.post("/issues/{issue_id}/corrections", response_model=IssueRead,
             summary="Draft a correction of a published issue: the next revision, saying what changed")
async def correct_issue(principal: Editor, session: SessionDep, clock: ClockDep, issue_id: RowId,
                        data: CorrectionIn) -> IssueRead:
    return await issues.correct_issue(session, clock, principal, issue_id, data)


@router.get("/issues", response_model=list[IssueRead], summary="The published issues, latest revisions, newest first")
async def list_issues(principal: Editor, session: SessionDep) -> list[IssueRead]:
    return await issues.published_issues(session)


MEDIA_TYPES = {
    Edition.HTML: "text/html; charset=utf-8",
    Edition.DOCX: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    Edition.PDF: "application/pdf",
    Edition.MD: "text/markdown; charset=utf-8",
    Edition.JSON: "application/json",
}


@router.get("/issues/{issue_id}/editions/{fmt}", response_class=Response,
            summary="An issue's edition: a draft's preview from today's figures, a published issue's archive")
async def issue_edition(principal: Editor, session: SessionDep, issue_id: RowId, fmt: Edition) -> Response:
    issue, content = await issues.issue_edition(session, issue_id, fmt)
    name = f"bulletin-{issue.month}-r{issue.revision}.{fmt.value}"
    return Response(content, media_type=MEDIA_TYPES[fmt], headers={
        "Content-Disposition": f'inline; filename="{name}"', "X-Content-Type-Options": "nosniff"})
