"""The medical e-map's search route: facilities near a point, nearest first, with today's free slots from the pool;
a bad coordinate, radius or page is a 422 naming the parameter."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from cityhealth.clock import BUSINESS_TZ, SimulatedClock
from cityhealth.db.engine import Database
from cityhealth.registry import facilities, geo
from cityhealth.registry.facility_schemas import FacilityProfileWrite, OpeningInterval
from cityhealth.security.principals import Role, Scope
from tests.factories.booking import (
    World,
    add_resident,
    book,
    booking_admin,
    publish,
    resident_principal,
    row_counts,
)
from tests.factories.security import headers_for, machine, staff

NEARBY = "/api/booking/nearby"
TODAY = date(2022, 6, 15)  # a Wednesday; the test clock stands at 09:30 Asia/Shanghai
GULOU = (32.0603, 118.7969)
CHILDREN = (32.0420, 118.7800)  # about 2.5 km away
WEEKDAYS = [OpeningInterval(weekday=day, opens="08:00", closes="17:30") for day in range(1, 6)]
ALWAYS = [OpeningInterval(weekday=day, opens="00:00", closes="24:00") for day in range(1, 8)]


@pytest.fixture
async def mapped(database: Database, clock: SimulatedClock, world: World) -> World:
    """The world's two hospitals on the map: 鼓楼 open on weekdays, 儿童 around the clock with an emergency room."""
    async with database.transaction() as session:
        await facilities.put_profile(session, clock, None, world.hospital_id, FacilityProfileWrite(
            latitude=GULOU[0], longitude=GULOU[1], phone="025-83304616", services=["outpatient", "pharmacy"],
            hours=WEEKDAYS))
        await facilities.put_profile(session, clock, None, world.other_hospital_id, FacilityProfileWrite(
            latitude=CHILDREN[0], longitude=CHILDREN[1], services=["emergency", "paediatrics"], hours=ALWAYS))
    return world


@pytest.fixture
async def resident_headers(app: FastAPI, database: Database, settings: Any, clock: SimulatedClock) -> dict[str, str]:
    resident_id, _ = await add_resident(database, settings, clock.now(), 1)
    return await headers_for(app, resident_principal(resident_id))


async def _same_day(client: httpx.AsyncClient, app: FastAPI, organization_id: int, allowed: bool) -> None:
    response = await client.put(f"/api/booking/policies/{organization_id}", json={"same_day_allowed": allowed},
                                headers=await headers_for(app, booking_admin()))
    assert response.status_code == 200, response.text


async def _near(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = await client.get(NEARBY, params={"latitude": GULOU[0], "longitude": GULOU[1], "radius_m": 10_000}
                                | params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_facilities_come_nearest_first_with_their_distance(
        client: httpx.AsyncClient, mapped: World, resident_headers: dict[str, str]) -> None:
    body = await _near(client, resident_headers)
    assert [item["organization_id"] for item in body["items"]] == [mapped.hospital_id, mapped.other_hospital_id]
    assert [item["distance_m"] for item in body["items"]] == [
        0.0, round(geo.great_circle_m(*GULOU, *CHILDREN), 1)]
    assert body["total"] == 2
    first = body["items"][0]
    assert (first["name"], first["phone"], first["services"]) == ("南京鼓楼医院", "025-83304616",
                                                                  ["outpatient", "pharmacy"])
    assert first["departments"] == ["内科", "外科", "眼科"]
    assert (first["open_now"], first["hours_today"]) == (True, ["08:00-17:30"])


async def test_each_facility_carries_todays_free_slots_from_the_pool(
        client: httpx.AsyncClient, app: FastAPI, mapped: World, resident_headers: dict[str, str]) -> None:
    await _same_day(client, app, mapped.hospital_id, True)
    await publish(client, app, mapped, service_date=TODAY, start=time(14, 0), end=time(17, 0), capacity=4)
    await publish(client, app, mapped, service_date=TODAY, start=time(14, 0), end=time(17, 0), capacity=2,
                  department_id=mapped.second_department_id)
    await publish(client, app, mapped, capacity=9)  # another day's session: not today's
    body = await _near(client, resident_headers)
    gulou, children = body["items"]
    assert gulou["today"] == {"sessions": 2, "free_slots": 6, "by_department": [
        {"department_id": mapped.department_id, "department": "内科", "free_slots": 4},
        {"department_id": mapped.second_department_id, "department": "外科", "free_slots": 2}]}
    assert children["today"] == {"sessions": 0, "free_slots": 0, "by_department": []}


async def test_a_booked_slot_is_no_longer_free(
        client: httpx.AsyncClient, app: FastAPI, database: Database, settings: Any, clock: SimulatedClock,
        mapped: World, resident_headers: dict[str, str]) -> None:
    await _same_day(client, app, mapped.hospital_id, True)
    session = await publish(client, app, mapped, service_date=TODAY, start=time(14, 0), end=time(17, 0), capacity=3)
    resident_id, _ = await add_resident(database, settings, clock.now(), 2)
    assert (await book(client, app, resident_principal(resident_id), session["id"])).status_code == 201
    assert (await _near(client, resident_headers))["items"][0]["today"]["free_slots"] == 2


async def test_a_hospital_without_same_day_booking_shows_its_sessions_but_no_free_slot(
        client: httpx.AsyncClient, app: FastAPI, mapped: World, resident_headers: dict[str, str]) -> None:
    await publish(client, app, mapped, service_date=TODAY, start=time(14, 0), end=time(17, 0), capacity=4)
    today = (await _near(client, resident_headers))["items"][0]["today"]
    assert today == {"sessions": 1, "free_slots": 0, "by_department": []}


async def test_a_session_already_started_has_no_free_slot(
        client: httpx.AsyncClient, app: FastAPI, mapped: World, resident_headers: dict[str, str]) -> None:
    await _same_day(client, app, mapped.hospital_id, True)
    await publish(client, app, mapped, service_date=TODAY, start=time(8, 0), end=time(12, 0), capacity=4)
    assert (await _near(client, resident_headers))["items"][0]["today"]["free_slots"] == 0


async def test_the_service_filter_keeps_only_facilities_offering_it(
        client: httpx.AsyncClient, mapped: World, resident_headers: dict[str, str]) -> None:
    body = await _near(client, resident_headers, service="emergency")
    assert [item["organization_id"] for item in body["items"]] == [mapped.other_hospital_id]
    assert body["total"] == 1


async def test_open_now_follows_the_clock_in_asia_shanghai(
        app: FastAPI, client: httpx.AsyncClient, clock: SimulatedClock, mapped: World) -> None:
    clock.set(datetime(2022, 6, 19, 23, 0, tzinfo=BUSINESS_TZ))  # a Sunday night
    headers = await headers_for(app, machine(Scope.BOOKING_READ, client_id="map-app"))
    everyone = await _near(client, headers)
    open_now = await _near(client, headers, open_now="true")
    assert [(item["organization_id"], item["open_now"]) for item in everyone["items"]] == [
        (mapped.hospital_id, False), (mapped.other_hospital_id, True)]
    assert [item["organization_id"] for item in open_now["items"]] == [mapped.other_hospital_id]
    assert everyone["items"][0]["hours_today"] == []


async def test_the_radius_leaves_out_what_lies_beyond_it(
        client: httpx.AsyncClient, mapped: World, resident_headers: dict[str, str]) -> None:
    body = await _near(client, resident_headers, radius_m=2_000)
    assert [item["organization_id"] for item in body["items"]] == [mapped.hospital_id]


async def test_a_page_is_cut_from_the_distance_order(
        client: httpx.AsyncClient, mapped: World, resident_headers: dict[str, str]) -> None:
    body = await _near(client, resident_headers, limit=1, offset=1)
    assert ([item["organization_id"] for item in body["items"]], body["total"], body["limit"], body["offset"]) == (
        [mapped.other_hospital_id], 2, 1, 1)


async def test_a_centre_given_in_gcj02_is_searched_from_its_wgs84_position(
        client: httpx.AsyncClient, mapped: World, resident_headers: dict[str, str]) -> None:
    shown = geo.wgs84_to_gcj02(*CHILDREN)
    body = await _near(client, resident_headers, latitude=shown[0], longitude=shown[1], crs="gcj02")
    assert body["items"][0]["organization_id"] == mapped.other_hospital_id
    assert body["items"][0]["distance_m"] == 0.0
    assert (body["latitude"], body["longitude"]) == pytest.approx(CHILDREN, abs=1e-8)


async def test_a_hotline_agent_and_a_registry_reader_may_search_the_map(
        app: FastAPI, client: httpx.AsyncClient, mapped: World) -> None:
    for principal in (staff(Role.HOTLINE_AGENT, user_id=41), machine(Scope.REGISTRY_READ, client_id="reader")):
        assert (await _near(client, await headers_for(app, principal)))["total"] == 2


async def test_a_caller_without_booking_or_registry_read_is_refused(
        app: FastAPI, client: httpx.AsyncClient, mapped: World) -> None:
    headers = await headers_for(app, machine(Scope.COLLECTION_UPLOAD, client_id="uploader"))
    response = await client.get(NEARBY, params={"latitude": 32, "longitude": 118, "radius_m": 10}, headers=headers)
    assert response.status_code == 403


@pytest.mark.parametrize(("params", "field", "rule"), [
    ({"latitude": "90.01"}, "query.latitude", "less_than_equal"),
    ({"latitude": "-90.5"}, "query.latitude", "greater_than_equal"),
    ({"latitude": "nan"}, "query.latitude", "finite_number"),
    ({"latitude": "north"}, "query.latitude", "float_parsing"),
    ({"longitude": "180.5"}, "query.longitude", "less_than_equal"),
    ({"longitude": "-inf"}, "query.longitude", "finite_number"),
    ({"radius_m": "0"}, "query.radius_m", "greater_than"),
    ({"radius_m": "-5"}, "query.radius_m", "greater_than"),
    ({"radius_m": "30000000"}, "query.radius_m", "less_than_equal"),
    ({"radius_m": "inf"}, "query.radius_m", "finite_number"),
    ({"limit": "0"}, "query.limit", "greater_than_equal"),
    ({"limit": "101"}, "query.limit", "less_than_equal"),
    ({"offset": "-1"}, "query.offset", "greater_than_equal"),
    ({"service": "haircuts"}, "query.service", "facility.service"),
    ({"crs": "bd09"}, "query.crs", "literal_error"),
])
async def test_a_bad_search_is_a_422_naming_the_parameter_and_changes_nothing(
        client: httpx.AsyncClient, database: Database, mapped: World, resident_headers: dict[str, str],
        params: dict[str, str], field: str, rule: str) -> None:
    before = await row_counts(database)
    query = {"latitude": "32.06", "longitude": "118.79", "radius_m": "1000"} | params
    response = await client.get(NEARBY, params=query, headers=resident_headers)
    assert response.status_code == 422, response.text
    body = response.json()
    assert (body["code"], body["field"], body["rule"]) == ("validation_failed", field, rule)
    assert await row_counts(database) == before


async def test_a_search_without_a_centre_is_a_422_naming_the_missing_parameter(
        client: httpx.AsyncClient, mapped: World, resident_headers: dict[str, str]) -> None:
    response = await client.get(NEARBY, params={"longitude": "118.79", "radius_m": "1000"}, headers=resident_headers)
    assert (response.status_code, response.json()["field"], response.json()["rule"]) == (
        422, "query.latitude", "missing")
