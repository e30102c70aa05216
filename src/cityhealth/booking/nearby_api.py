"""The medical e-map's search route: facilities near a point, nearest first, each with today's free slots."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from cityhealth.booking import nearby
from cityhealth.booking.availability import BookingRuntime, runtime_of
from cityhealth.booking.schemas import NearbyPage
from cityhealth.context import ClockDep, DatabaseDep, SessionDep
from cityhealth.db.types import PageOffset
from cityhealth.registry.facility_schemas import MAX_NEAR_PAGE, Crs, ServiceCode
from cityhealth.registry.geo import MAX_DISTANCE_M
from cityhealth.registry.service import NearQuery
from cityhealth.security.dependencies import require_any
from cityhealth.security.principals import Principal, Scope

router = APIRouter(prefix="/api/booking", tags=["booking"])
# Residents and agents (booking.read) and registry readers: the map shows public facts about facilities only.
MapReader = Annotated[Principal, Depends(require_any(Scope.BOOKING_READ, Scope.REGISTRY_READ))]


async def get_runtime(request: Request) -> BookingRuntime:
    return runtime_of(request.app.state)


@router.get("/nearby", response_model=NearbyPage,
            summary="Facilities within a great-circle radius, nearest first, with today's free slots")
async def search_nearby(
    principal: MapReader, session: SessionDep, database: DatabaseDep, clock: ClockDep,
    runtime: Annotated[BookingRuntime, Depends(get_runtime)],
    latitude: Annotated[float, Query(ge=-90, le=90, allow_inf_nan=False, description="degrees north")],
    longitude: Annotated[float, Query(ge=-180, le=180, allow_inf_nan=False, description="degrees east")],
    radius_m: Annotated[float, Query(gt=0, le=MAX_DISTANCE_M, allow_inf_nan=False,
                                     description="metres, at most half the Earth's circumference")],
    crs: Annotated[Crs, Query(description="the system latitude and longitude are in")] = "wgs84",
    service: Annotated[ServiceCode | None, Query(description="only facilities offering it")] = None,
    open_now: Annotated[bool, Query(description="only facilities open now (Asia/Shanghai)")] = False,
    limit: Annotated[int, Query(ge=1, le=MAX_NEAR_PAGE)] = 20,
    offset: PageOffset = 0,
) -> NearbyPage:
    query = NearQuery(latitude=latitude, longitude=longitude, crs=crs, radius_m=radius_m, service=service,
                      open_now=open_now, limit=limit, offset=offset)
    return await nearby.nearby(session, database, clock, runtime, principal, query)
