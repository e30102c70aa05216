"""The SMART Scheduling Links feed and the availability search show free only what the booking rule would let
the channel take, read incrementally with `_since`, and answer conditional requests with 304."""

from __future__ import annotations

import json
from datetime import date, time, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from cityhealth.booking import feed_subjects
from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.security.principals import Scope
from tests.factories.booking import (
    TOMORROW,
    World,
    add_resident,
    book,
    online_app,
    publish,
    scheduler,
)
from tests.factories.security import admin_headers, headers_for, machine

TODAY = date(2022, 6, 15)  # the test clock's day
SLOTS = "/api/booking/smart/slots.ndjson"
MANIFEST = "/api/booking/$bulk-publish"


async def _feed_headers(app: FastAPI) -> dict[str, str]:
    return await headers_for(app, machine(Scope.BOOKING_READ, client_id="smart-reader"))


async def _resources(client: httpx.AsyncClient, app: FastAPI, url: str, **params: str) -> list[dict[str, Any]]:
    response = await client.get(url, params=params, headers=await _feed_headers(app))
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines() if line]


async def _slot(client: httpx.AsyncClient, app: FastAPI, session_id: int) -> tuple[str, int]:
    """(status, free slots) of the session's Slot in the full slot file."""
    [slot] = [s for s in await _resources(client, app, SLOTS) if s["id"] == str(session_id)]
    [capacity] = [e["valueInteger"] for e in slot["extension"] if e["url"].endswith("slot-capacity")]
    return slot["status"], capacity


async def _available(client: httpx.AsyncClient, app: FastAPI, world: World, principal: Any,
                     day: date) -> dict[int, int]:
    response = await client.get("/api/booking/sessions", headers=await headers_for(app, principal), params={
        "organization_id": world.hospital_id, "date_from": day.isoformat(), "date_to": day.isoformat()})
    assert response.status_code == 200, response.text
    return {s["id"]: s["available"] for s in response.json()}


# --- "Free" is what the booking rule would let the channel take ---------------------------------------------


async def test_a_same_day_session_is_not_free_where_same_day_booking_is_not_allowed(
        client: httpx.AsyncClient, app: FastAPI, world: World) -> None:
    session = await publish(client, app, world, service_date=TODAY, start=time(14, 0), end=time(17, 0))
    assert await _slot(client, app, session["id"]) == ("busy", 0)
    assert await _available(client, app, world, online_app(world), TODAY) == {session["id"]: 0}


async def test_slots_reserved_for_another_channel_are_not_free_for_this_one(
        client: httpx.AsyncClient, app: FastAPI, world: World) -> None:
    session = await publish(client, app, world, capacity=3, quotas={"clinic": 2})
    assert await _slot(client, app, session["id"]) == ("free", 1)  # the public channel shares the one left
    day = date.fromisoformat(session["service_date"])
    assert await _available(client, app, world, online_app(world), day) == {session["id"]: 1}
    assert await _available(client, app, world, scheduler(world), day) == {session["id"]: 2}  # the clinic's


async def test_a_session_past_its_next_day_cutoff_is_not_free(client: httpx.AsyncClient, app: FastAPI,
                                                              world: World, clock: SimulatedClock) -> None:
    session = await publish(client, app, world, service_date=TOMORROW)
    assert await _slot(client, app, session["id"]) == ("free", 5)
    clock.advance(timedelta(hours=3))  # 12:30, past the default cut-off at noon
    assert await _slot(client, app, session["id"]) == ("busy", 0)
    assert await _available(client, app, world, online_app(world), TOMORROW) == {session["id"]: 0}


async def test_an_unreleased_session_shows_no_free_slot_in_the_search(
        client: httpx.AsyncClient, app: FastAPI, world: World) -> None:
    later = date(2022, 6, 25)  # released on 06-18
    session = await publish(client, app, world, service_date=later)
    assert await _available(client, app, world, online_app(world), later) == {session["id"]: 0}


# --- Incremental reads -------------------------------------------------------------------------------------


async def test_since_returns_a_session_released_after_it(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                         clock: SimulatedClock) -> None:
    session = await publish(client, app, world, service_date=date(2022, 6, 23))  # released 06-16 00:00
    clock.advance(timedelta(hours=1))
    mark = clock.now()
    clock.advance(timedelta(hours=14))  # 06-16 00:30
    changed = await _resources(client, app, SLOTS, _since=mark.isoformat())
    assert [(s["id"], s["status"]) for s in changed] == [(str(session["id"]), "free")]


async def test_manifest_urls_are_percent_encoded_and_fetch_as_given(client: httpx.AsyncClient, app: FastAPI,
                                                                   world: World, clock: SimulatedClock) -> None:
    await publish(client, app, world)
    headers = await _feed_headers(app)
    manifest = await client.get(MANIFEST, params={"_since": clock.now().isoformat()}, headers=headers)
    assert manifest.status_code == 200, manifest.text
    for item in manifest.json()["output"]:
        assert "+" not in item["url"]
        assert (await client.get(item["url"], headers=headers)).status_code == 200, item["url"]


# --- HTTP validators ---------------------------------------------------------------------------------------


async def test_files_and_manifest_carry_validators_and_answer_304_while_nothing_changes(
        client: httpx.AsyncClient, app: FastAPI, world: World, clock: SimulatedClock) -> None:
    await publish(client, app, world)
    headers = await _feed_headers(app)
    for url in (MANIFEST, SLOTS, "/api/booking/smart/locations.ndjson", "/api/booking/smart/schedules.ndjson"):
        first = await client.get(url, headers=headers)
        assert first.headers["cache-control"] == "private, max-age=0, must-revalidate"
        clock.advance(timedelta(minutes=1))  # time passing without a turning point changes nothing
        by_tag = await client.get(url, headers=headers | {"If-None-Match": first.headers["etag"]})
        by_date = await client.get(url, headers=headers | {"If-Modified-Since": first.headers["last-modified"]})
        assert (by_tag.status_code, by_tag.content, by_date.status_code) == (304, b"", 304), url
        assert by_tag.headers["etag"] == first.headers["etag"]


async def test_a_booking_changes_the_slot_files_validator_even_within_the_same_instant(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    session = await publish(client, app, world, capacity=1)
    headers = await _feed_headers(app)
    before = await client.get(SLOTS, headers=headers)  # the simulated clock stands still: same updated_at
    _, number = await add_resident(database, settings, clock.now(), 1)
    assert (await book(client, app, online_app(world), session["id"], number)).status_code == 201
    after = await client.get(SLOTS, headers=headers | {"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200
    assert after.headers["etag"] != before.headers["etag"]
    assert '"status":"busy"' in after.text


async def test_a_file_read_again_after_writes_is_the_file_read_from_scratch(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    booked, untouched = await publish(client, app, world, capacity=1), await publish(client, app, world, capacity=2)
    headers = await _feed_headers(app)
    before = await client.get(SLOTS, headers=headers)  # the process keeps these rows and lines
    _, number = await add_resident(database, settings, clock.now(), 1)
    assert (await book(client, app, online_app(world), booked["id"], number)).status_code == 201
    added = await publish(client, app, world, start=time(14, 0), end=time(17, 0))
    again = await client.get(SLOTS, headers=headers)  # only the changed and new sessions are read again
    app.state.booking_feed = None  # a process that never read the feed
    fresh = await client.get(SLOTS, headers=headers)
    assert again.content == fresh.content
    lines = {json.loads(line)["id"]: line for line in again.text.splitlines()}
    assert set(lines) == {str(booked["id"]), str(untouched["id"]), str(added["id"])}
    assert '"status":"busy"' in lines[str(booked["id"])]
    assert lines[str(untouched["id"])] in before.text.splitlines()


async def test_lines_kept_across_writes_still_follow_the_clock_and_reads_for_other_files(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    written = await publish(client, app, world, capacity=1)
    tomorrow = await publish(client, app, world, service_date=TOMORROW)
    headers = await _feed_headers(app)
    assert (await client.get(SLOTS, headers=headers)).status_code == 200  # every line made and kept
    _, number = await add_resident(database, settings, clock.now(), 1)
    assert (await book(client, app, online_app(world), written["id"], number)).status_code == 201
    assert (await client.get("/api/booking/smart/locations.ndjson", headers=headers)).status_code == 200
    assert await _slot(client, app, written["id"]) == ("busy", 0)  # read again for the Locations, not lost
    assert await _slot(client, app, tomorrow["id"]) == ("free", 5)
    clock.advance(timedelta(hours=3))  # past tomorrow's cut-off: no row changes, its line does
    assert await _slot(client, app, tomorrow["id"]) == ("busy", 0)


# --- What a slot finder needs ------------------------------------------------------------------------------


async def test_locations_carry_the_hospitals_address_and_own_booking_phone(
        client: httpx.AsyncClient, app: FastAPI, world: World) -> None:
    address = {"address_line": "中山路321号", "address_city": "南京市", "address_district": "鼓楼区",
               "address_state": "江苏省", "postal_code": "210008", "booking_phone": "025-83106666"}
    patched = await client.patch(f"/api/registry/organizations/{world.hospital_id}", json=address,
                                 headers=await admin_headers(app))
    assert patched.status_code == 200, patched.text
    session = await publish(client, app, world)
    await publish(client, app, world, organization_id=world.other_hospital_id, department_id=world.other_department_id)
    locations = {loc["id"]: loc for loc in await _resources(client, app, "/api/booking/smart/locations.ndjson")}
    assert locations[str(world.hospital_id)]["address"] == {
        "line": ["中山路321号"], "city": "南京市", "district": "鼓楼区", "state": "江苏省", "postalCode": "210008",
        "country": "CN"}
    assert locations[str(world.hospital_id)]["telecom"] == [{"system": "phone", "value": "025-83106666"}]
    assert "telecom" not in locations[str(world.other_hospital_id)]  # no phone of its own: none, never 12320
    slots = {s["id"]: s for s in await _resources(client, app, SLOTS)}
    extensions = {e["url"].rsplit("/", 1)[1]: e for e in slots[str(session["id"])]["extension"]}
    assert extensions["booking-phone"]["valueString"] == "025-83106666"
    assert extensions["booking-deep-link"]["valueUrl"] == f"https://cityhealth.test/booking/slots/{session['id']}"


async def test_schedules_code_their_service_type_with_the_national_subject(
        client: httpx.AsyncClient, app: FastAPI, world: World) -> None:
    await publish(client, app, world)
    [schedule] = await _resources(client, app, "/api/booking/smart/schedules.ndjson")
    assert schedule["serviceType"] == [{"coding": [{"system": "urn:cityhealth:clinical-subject", "code": "03",
                                                    "display": "内科"}], "text": "内科"}]


def test_a_subdivided_subject_is_coded_by_its_first_level_subject() -> None:
    assert feed_subjects.coding("03.01") == {"system": feed_subjects.SYSTEM, "code": "03", "display": "内科"}
    assert feed_subjects.coding("99") is None
