"""The bulletin's API: the publication profile, read and changed by the bulletin editor only (audited)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header

from cityhealth.context import ClockDep, SessionDep
from cityhealth.errors import ValidationFailed
from cityhealth.reporting import profiles
from cityhealth.reporting.schemas import PublicationProfileIn, PublicationProfileRead
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
