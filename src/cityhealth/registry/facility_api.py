"""The medical e-map's registry routes: read and write a facility's profile (the `near` search, which joins the
booking pool's free slots, is the booking room's: booking/nearby_api.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from cityhealth.context import ClockDep, SessionDep
from cityhealth.db.types import RowId
from cityhealth.registry import facilities
from cityhealth.registry.facility_schemas import FacilityProfileRead, FacilityProfileWrite
from cityhealth.security.dependencies import require
from cityhealth.security.principals import Principal, Scope

router = APIRouter(prefix="/api/registry", tags=["registry"])

RegistryReader = Annotated[Principal, Depends(require(Scope.REGISTRY_READ))]
RegistryWriter = Annotated[Principal, Depends(require(Scope.REGISTRY_WRITE))]


@router.get("/organizations/{organization_id}/facility", response_model=FacilityProfileRead,
            summary="Get an organization's facility profile (position, phone, services, opening hours)")
async def get_facility(organization_id: RowId, session: SessionDep, _: RegistryReader) -> FacilityProfileRead:
    return await facilities.get_profile(session, organization_id)


@router.put("/organizations/{organization_id}/facility", response_model=FacilityProfileRead,
            summary="Create or replace an organization's facility profile (coordinates in WGS-84 or GCJ-02)")
async def put_facility(organization_id: RowId, data: FacilityProfileWrite, session: SessionDep, clock: ClockDep,
                       principal: RegistryWriter) -> FacilityProfileRead:
    profile, _ = await facilities.put_profile(session, clock, principal, organization_id, data)
    return profile
