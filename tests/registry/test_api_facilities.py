"""Facility profiles through the registry API: written whole, stored in WGS-84, audited, refused whole."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tests.factories.registry import audit_events, count, organization_payload, seed_areas
from tests.factories.security import admin_headers, headers_for, staff

from cityhealth.clock import BUSINESS_TZ, SimulatedClock
from cityhealth.db.engine import Database
from cityhealth.registry import facilities, geo
from cityhealth.registry.facility_schemas import NearQuery
from cityhealth.registry.models import FacilityHours, FacilityProfile, FacilityService
from cityhealth.security.principals import Role

ORGS = "/api/registry/organizations"
GULOU_WGS = (32.0603, 118.7969)


@pytest.fixture
async def admin(app: FastAPI) -> dict[str, str]:
    return await admin_headers(app)


@pytest.fixture(autouse=True)
async def areas(database: Database, clock: SimulatedClock) -> None:
    await seed_areas(database, clock)


@pytest.fixture
async def organization_id(client: httpx.AsyncClient, admin: dict[str, str]) -> int:
    response = await client.post(ORGS, json=organization_payload(), headers=admin)
    assert response.status_code == 201, response.text
    created: int = response.json()["id"]
    return created


def profile(**overrides: Any) -> dict[str, Any]:
    return {"latitude": GULOU_WGS[0], "longitude": GULOU_WGS[1], "phone": "025-83304616",
            "services": ["outpatient", "emergency"],
            "hours": [{"weekday": 1, "opens": "08:00", "closes": "12:00"},
                      {"weekday": 1, "opens": "14:00", "closes": "17:30"}]} | overrides


async def _put(client: httpx.AsyncClient, headers: dict[str, str], organization_id: int,
               body: dict[str, Any]) -> httpx.Response:
    return await client.put(f"{ORGS}/{organization_id}/facility", json=body, headers=headers)


async def test_a_profile_written_is_read_back_with_its_gcj02_pair(
        client: httpx.AsyncClient, admin: dict[str, str], organization_id: int) -> None:
    assert (await _put(client, admin, organization_id, profile())).status_code == 200
    read = (await client.get(f"{ORGS}/{organization_id}/facility", headers=admin)).json()
    assert (read["latitude"], read["longitude"], read["phone"]) == (*GULOU_WGS, "025-83304616")
    assert (read["gcj02_latitude"], read["gcj02_longitude"]) == pytest.approx(geo.wgs84_to_gcj02(*GULOU_WGS))
    assert read["services"] == ["emergency", "outpatient"]
    assert read["hours"] == profile()["hours"]


async def test_gcj02_coordinates_are_stored_as_wgs84(
        client: httpx.AsyncClient, admin: dict[str, str], organization_id: int, database: Database) -> None:
    shown = geo.wgs84_to_gcj02(*GULOU_WGS)
    response = await _put(client, admin, organization_id, profile(latitude=shown[0], longitude=shown[1], crs="gcj02"))
    assert response.status_code == 200, response.text
    async with database.sessions() as session:
        stored = await session.get(FacilityProfile, organization_id)
    assert stored is not None
    assert geo.great_circle_m(stored.latitude, stored.longitude, *GULOU_WGS) < 0.01


async def test_the_same_profile_again_changes_nothing_and_is_audited_once(
        app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], organization_id: int, database: Database,
        clock: SimulatedClock) -> None:
    first = (await _put(client, admin, organization_id, profile())).json()
    clock.advance(timedelta(hours=1))
    again = (await _put(client, await admin_headers(app), organization_id, profile())).json()
    assert again["updated_at"] == first["updated_at"]
    events = await audit_events(database, resource_type="facility", resource_id=str(organization_id))
    assert [event.action for event in events] == ["create"]


async def test_a_changed_profile_replaces_the_services_and_hours_whole(
        client: httpx.AsyncClient, admin: dict[str, str], organization_id: int, database: Database) -> None:
    await _put(client, admin, organization_id, profile())
    changed = profile(services=["pharmacy"], hours=[{"weekday": 7, "opens": "00:00", "closes": "24:00"}])
    read = (await _put(client, admin, organization_id, changed)).json()
    assert (read["services"], read["hours"]) == (changed["services"], changed["hours"])
    assert (await count(database, FacilityService), await count(database, FacilityHours)) == (1, 1)
    events = await audit_events(database, resource_type="facility", resource_id=str(organization_id))
    assert [event.action for event in events] == ["create", "update"]


@pytest.mark.parametrize(("change", "field", "rule"), [
    ({"latitude": 90.5}, "latitude", "less_than_equal"),
    ({"latitude": -91}, "latitude", "greater_than_equal"),
    ({"longitude": 180.01}, "longitude", "less_than_equal"),
    ({"longitude": "east"}, "longitude", "float_parsing"),
    ({"crs": "bd09"}, "crs", "literal_error"),
    ({"services": ["haircuts"]}, "services.0", "facility.service"),
    ({"services": ["pharmacy", "pharmacy"]}, "body", "facility.service_repeated"),
    ({"hours": [{"weekday": 8, "opens": "08:00", "closes": "12:00"}]}, "hours.0.weekday", "less_than_equal"),
    ({"hours": [{"weekday": 1, "opens": "8:00", "closes": "12:00"}]}, "hours.0.opens", "facility.hours_time"),
    ({"hours": [{"weekday": 1, "opens": "12:00", "closes": "08:00"}]}, "hours.0", "facility.hours_order"),
    ({"hours": [{"weekday": 2, "opens": "08:00", "closes": "12:00"},
                {"weekday": 2, "opens": "11:00", "closes": "15:00"}]}, "body", "facility.hours_overlap"),
])
async def test_a_bad_profile_is_refused_naming_the_field_and_nothing_is_written(
        client: httpx.AsyncClient, admin: dict[str, str], organization_id: int, database: Database,
        change: dict[str, Any], field: str, rule: str) -> None:
    response = await _put(client, admin, organization_id, profile(**change))
    assert response.status_code == 422, response.text
    body = response.json()
    assert (body["field"], body["rule"]) == (field, rule)
    assert await count(database, FacilityProfile) == 0


async def test_a_refused_change_leaves_the_profile_as_it_was(
        client: httpx.AsyncClient, admin: dict[str, str], organization_id: int) -> None:
    before = (await _put(client, admin, organization_id, profile())).json()
    refused = await _put(client, admin, organization_id, profile(latitude=32.1, services=["nope"]))
    assert refused.status_code == 422
    assert (await client.get(f"{ORGS}/{organization_id}/facility", headers=admin)).json() == before


async def test_an_organization_administrator_writes_their_own_profile(
        app: FastAPI, client: httpx.AsyncClient, organization_id: int) -> None:
    own = await headers_for(app, staff(Role.ORGANIZATION_ADMIN, organization_id=organization_id, user_id=31))
    assert (await _put(client, own, organization_id, profile())).status_code == 200


async def test_another_organizations_profile_looks_absent_to_an_organization_administrator(
        app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], organization_id: int,
        database: Database) -> None:
    other = (await client.post(ORGS, json=organization_payload(), headers=admin)).json()["id"]
    foreign = await headers_for(app, staff(Role.ORGANIZATION_ADMIN, organization_id=other, user_id=32))
    response = await _put(client, foreign, organization_id, profile())
    assert (response.status_code, response.json()["field"]) == (404, "organization_id")
    assert await count(database, FacilityProfile) == 0


async def test_a_reader_without_registry_write_cannot_write_a_profile(
        app: FastAPI, client: httpx.AsyncClient, organization_id: int) -> None:
    reader = await headers_for(app, staff(Role.HOTLINE_AGENT, user_id=33))
    assert (await _put(client, reader, organization_id, profile())).status_code == 403


async def test_an_organization_without_a_profile_answers_404_facility_not_found(
        client: httpx.AsyncClient, admin: dict[str, str], organization_id: int) -> None:
    response = await client.get(f"{ORGS}/{organization_id}/facility", headers=admin)
    assert (response.status_code, response.json()["code"]) == (404, "facility_not_found")


async def test_a_profile_of_an_organization_that_does_not_exist_is_404(
        client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await _put(client, admin, 999_999, profile())
    assert (response.status_code, response.json()["field"]) == (404, "organization_id")


async def test_two_first_writes_at_once_leave_one_profile_and_no_server_error(
        client: httpx.AsyncClient, admin: dict[str, str], organization_id: int, database: Database) -> None:
    bodies = [profile(services=["pharmacy"]), profile(services=["dental", "tcm"])]
    responses = await asyncio.gather(*(_put(client, admin, organization_id, body) for body in bodies))
    statuses = sorted(response.status_code for response in responses)
    assert statuses in ([200, 200], [200, 409]), [response.text for response in responses]
    winner = (await client.get(f"{ORGS}/{organization_id}/facility", headers=admin)).json()
    assert winner["services"] in (["pharmacy"], ["dental", "tcm"])
    assert (await count(database, FacilityProfile), await count(database, FacilityService)) == (
        1, len(winner["services"]))


async def test_open_now_as_a_filter_and_as_a_field_agree_at_every_edge_of_the_hours(
        client: httpx.AsyncClient, admin: dict[str, str], organization_id: int, database: Database,
        clock: SimulatedClock) -> None:
    await _put(client, admin, organization_id, profile())  # Mondays 08:00-12:00 and 14:00-17:30
    monday = datetime(2022, 6, 20, tzinfo=BUSINESS_TZ)
    for hour, minute in ((7, 59), (8, 0), (11, 59), (12, 0), (13, 59), (14, 0), (17, 29), (17, 30)):
        moment = monday.replace(hour=hour, minute=minute)
        clock.set(moment)
        async with database.sessions() as session:
            every = await facilities.near(session, clock, NearQuery(latitude=GULOU_WGS[0], longitude=GULOU_WGS[1],
                                                                    radius_m=100))
            open_only = await facilities.near(session, clock, NearQuery(
                latitude=GULOU_WGS[0], longitude=GULOU_WGS[1], radius_m=100, open_now=True))
        [item] = every.items
        expected = (8, 0) <= (hour, minute) < (12, 0) or (14, 0) <= (hour, minute) < (17, 30)
        assert (item.open_now, open_only.total) == (expected, int(expected)), moment
