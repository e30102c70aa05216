"""The medical e-map's use cases (医疗电子地图): a facility's profile (position, phone, services, opening hours),
and the `near` search.

A profile is written whole (PUT): the coordinates arrive in WGS-84 or GCJ-02 as the caller says and are stored as
WGS-84; only what differs is written, and a change is audited. An organization's administrator writes their own
organization's profile, a platform writer any; another organization's looks absent (404), as for departments.

`near` finds the facilities within a great-circle radius, nearest first: a box that provably holds the circle
(geo.bounding_box) selects candidates in SQL with the service and open-now filters, the exact distance
(geo.great_circle_m) drops the corners and orders them, and the page is cut from that order, so the ordering is
right at any radius and on any page.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import BUSINESS_TZ, Clock
from cityhealth.errors import Conflict, NotFound
from cityhealth.registry import facility_repository, geo
from cityhealth.registry.facility_repository import Candidate
from cityhealth.registry.facility_schemas import (
    FacilityNear,
    FacilityProfileRead,
    FacilityProfileWrite,
    NearPage,
    NearQuery,
    OpeningInterval,
    clock_time,
    minutes_of,
)
from cityhealth.registry.models import FacilityProfile
from cityhealth.registry.service import apply_changes, flush_unique, get_organization, organization_for_write
from cityhealth.security.audit import Action, record
from cityhealth.security.principals import Principal

RESOURCE = "facility"
SERVICE_NAMES = {
    "outpatient": "门诊", "emergency": "急诊", "fever_clinic": "发热门诊", "inpatient": "住院", "pharmacy": "药房",
    "laboratory": "检验", "imaging": "影像检查", "vaccination": "预防接种", "maternity": "产科", "paediatrics": "儿科",
    "dental": "口腔", "tcm": "中医", "rehabilitation": "康复", "physical_exam": "健康体检",
    "family_doctor": "家庭医生签约", "chronic_disease": "慢病管理", "mental_health": "精神心理",
}
Interval = tuple[int, int, int]  # (ISO weekday, opens_min, closes_min)


def wgs84_of(latitude: float, longitude: float, crs: str) -> tuple[float, float]:
    """The WGS-84 position of coordinates given in `crs`."""
    return geo.gcj02_to_wgs84(latitude, longitude) if crs == "gcj02" else (latitude, longitude)


def is_open(intervals: Iterable[Interval], weekday: int, minute: int) -> bool:
    """Open at minute `minute` of ISO weekday `weekday` (Asia/Shanghai): within [opens, closes) of an interval."""
    return any(day == weekday and opens <= minute < closes for day, opens, closes in intervals)


def local_moment(clock: Clock) -> tuple[Any, int, int]:
    """Today's business date, ISO weekday and minute after midnight, Asia/Shanghai."""
    local = clock.now().astimezone(BUSINESS_TZ)
    return local.date(), local.isoweekday(), local.hour * 60 + local.minute


# --- Profiles -----------------------------------------------------------------------------------------


def _profile_read(profile: FacilityProfile, services: list[str], hours: list[Interval]) -> FacilityProfileRead:
    gcj_lat, gcj_lon = geo.wgs84_to_gcj02(profile.latitude, profile.longitude)
    return FacilityProfileRead(
        organization_id=profile.organization_id, latitude=profile.latitude, longitude=profile.longitude,
        gcj02_latitude=gcj_lat, gcj02_longitude=gcj_lon, phone=profile.phone, services=services,
        hours=[OpeningInterval(weekday=d, opens=clock_time(o), closes=clock_time(c)) for d, o, c in hours],
        updated_at=profile.updated_at)


async def get_profile(session: AsyncSession, organization_id: int) -> FacilityProfileRead:
    await get_organization(session, organization_id)
    profile = await facility_repository.get_profile(session, organization_id)
    if profile is None:
        raise NotFound(f"organization {organization_id} has no facility profile", code="facility_not_found",
                       field="organization_id", value=organization_id)
    services = await facility_repository.services_of(session, [organization_id])
    hours = await facility_repository.hours_of(session, [organization_id])
    return _profile_read(profile, services.get(organization_id, []), hours.get(organization_id, []))


async def put_profile(session: AsyncSession, clock: Clock, principal: Principal | None, organization_id: int,
                      data: FacilityProfileWrite, *, actor: str | None = None) -> tuple[FacilityProfileRead, bool]:
    """Create or replace an organization's facility profile; True if anything changed (then audited)."""
    organization = await organization_for_write(session, principal, organization_id)
    latitude, longitude = wgs84_of(data.latitude, data.longitude, data.crs)
    hours = sorted((i.weekday, minutes_of(i.opens), minutes_of(i.closes)) for i in data.hours)
    services = sorted(data.services)
    profile = await facility_repository.get_profile(session, organization.id, lock=True)
    now = clock.now()
    created = profile is None
    if profile is None:
        profile = FacilityProfile(organization_id=organization.id, latitude=latitude, longitude=longitude,
                                  phone=data.phone, created_at=now, updated_at=now)
        session.add(profile)
        # Two first writes at once: the loser is told so (409), and its retry finds the profile to update.
        await flush_unique(session, Conflict(
            f"the facility profile of organization {organization.id} was created concurrently; retry",
            code="facility_conflict", field="organization_id", value=organization.id, rule="facility.unique"))
        changed = True
    else:
        changed = apply_changes(profile, {"latitude": latitude, "longitude": longitude, "phone": data.phone}, clock)
    if services != (await facility_repository.services_of(session, [organization.id])).get(organization.id, []):
        await facility_repository.replace_services(session, organization.id, services)
        changed = True
    if hours != (await facility_repository.hours_of(session, [organization.id])).get(organization.id, []):
        await facility_repository.replace_hours(session, organization.id, hours)
        changed = True
    if changed:
        profile.updated_at = now
        await session.flush()
        record(session, clock, principal, Action.CREATE if created else Action.UPDATE, RESOURCE,
               resource_id=organization.id, detail=f"facility profile of organization {organization.id}",
               actor=actor)
    return _profile_read(profile, services, hours), changed


# --- The near search ----------------------------------------------------------------------------------


def rank(found: Iterable[Candidate], latitude: float, longitude: float, radius_m: float,
         first: int | None = None) -> tuple[list[tuple[float, Candidate]], int]:
    """The candidates within `radius_m` of the centre with their distances, nearest first (ties by id), at most
    `first` of them; and how many are within the radius."""
    distance_m = geo.distances_from(latitude, longitude)
    measured = ((distance_m(c.latitude, c.longitude), c) for c in found)
    within = [(d, c) for d, c in measured if d <= radius_m]
    if first is not None and first < len(within):  # a page near the front: a partial sort
        return heapq.nsmallest(first, within, key=_distance_then_id), len(within)
    return sorted(within, key=_distance_then_id), len(within)


def _distance_then_id(pair: tuple[float, Candidate]) -> tuple[float, int]:
    return pair[0], pair[1].organization_id


async def near(session: AsyncSession, clock: Clock, query: NearQuery) -> NearPage:
    """The facilities within the radius, nearest first, one page of them (see the module's docstring)."""
    latitude, longitude = wgs84_of(query.latitude, query.longitude, query.crs)
    today, weekday, minute = local_moment(clock)
    box = geo.bounding_box(latitude, longitude, query.radius_m)
    found = await facility_repository.candidates(session, box, active_on=today, service=query.service,
                                                 open_at=(weekday, minute) if query.open_now else None)
    ranked, total = rank(found, latitude, longitude, query.radius_m, first=query.offset + query.limit)
    page = ranked[query.offset:]
    ids = [c.organization_id for _, c in page]
    services = await facility_repository.services_of(session, ids)
    hours = await facility_repository.hours_of(session, ids)
    departments = await facility_repository.active_department_names(session, ids)
    details = await facility_repository.facility_details(session, ids)
    return NearPage(items=[_near_item(distance, c, details[c.organization_id], services.get(c.organization_id, []),
                                      hours.get(c.organization_id, []), departments.get(c.organization_id, []),
                                      weekday, minute) for distance, c in page],
                    total=total, limit=query.limit, offset=query.offset, latitude=latitude,
                    longitude=longitude)


def _near_item(distance: float, candidate: Candidate, row: Any, services: list[str], hours: Sequence[Interval],
               departments: list[str], weekday: int, minute: int) -> FacilityNear:
    gcj_lat, gcj_lon = geo.wgs84_to_gcj02(candidate.latitude, candidate.longitude)
    return FacilityNear(
        organization_id=candidate.organization_id, name=row["name"], short_name=row["short_name"], kind=row["kind"],
        level=row["level"], distance_m=round(distance, 1), latitude=candidate.latitude,
        longitude=candidate.longitude, gcj02_latitude=gcj_lat, gcj02_longitude=gcj_lon,
        address_line=row["address_line"], address_district=row["address_district"], address_city=row["address_city"],
        phone=row["phone"], booking_phone=row["booking_phone"], services=services, departments=departments,
        open_now=is_open(hours, weekday, minute),
        hours_today=[f"{clock_time(o)}-{clock_time(c)}" for d, o, c in hours if d == weekday])
