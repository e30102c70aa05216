"""The bulletin's booking section, and the SMART Scheduling Links files for third parties."""

from __future__ import annotations

import json
from datetime import date, time, timedelta

import httpx
from fastapi import FastAPI

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.security.principals import Role, Scope
from tests.factories.booking import (
    World,
    add_resident,
    book,
    book_by_phone,
    booking_admin,
    local,
    online_app,
    publish,
    resident_principal,
    scheduler,
    third_party,
)
from tests.factories.security import headers_for, machine, staff


async def test_statistics_give_the_bulletin_section(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                    database: Database, settings: Settings,
                                                    clock: SimulatedClock) -> None:
    big = await publish(client, app, world, capacity=20)
    small = await publish(client, app, world, capacity=5, organization_id=world.other_hospital_id,
                          department_id=world.other_department_id)
    callers = [online_app(world), online_app(world), scheduler(world), third_party(world)]
    for seq, principal in enumerate(callers):
        _, number = await add_resident(database, settings, clock.now(), seq + 1)
        assert (await book(client, app, principal, big["id"], number)).status_code == 201
    _, number = await add_resident(database, settings, clock.now(), 10)
    assert (await book_by_phone(client, app, big["id"], number)).status_code == 201
    _, number = await add_resident(database, settings, clock.now(), 50)
    booked = await book(client, app, third_party(world), small["id"], number)
    admin = await headers_for(app, booking_admin())
    # A cancellation does not unmake a booking made in the month.
    await client.post(f"/api/booking/bookings/{booked.json()['id']}/cancel",
                      headers=await headers_for(app, third_party(world)))
    balance = await client.post("/api/booking/opening-balances", headers=admin,
                                json={"as_of": "2022-05-31", "bookings": 29000000, "note": "旧平台迁移"})
    assert balance.status_code == 201, balance.text
    editor = await headers_for(app, staff(Role.BULLETIN_EDITOR, user_id=3))
    response = await client.get("/api/booking/statistics", params={"month": "2022-06"}, headers=editor)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "by_hospital": [
            {"hospital": "南京鼓楼医院", "online_12320": 2, "phone": 1, "clinic": 1, "third_party": 1},
            {"hospital": "南京市儿童医院", "online_12320": 0, "phone": 0, "clinic": 0, "third_party": 1},
        ],
        "by_app": [{"app": "健康南京客户端", "bookings": 2}, {"app": "就医 160", "bookings": 2}],
        "cumulative_at_month_end": 29000006,
    }
    may = await client.get("/api/booking/statistics", params={"month": "2022-05"}, headers=editor)
    assert may.json() == {"by_hospital": [], "by_app": [], "cumulative_at_month_end": 29000000}


async def test_statistics_refuse_a_malformed_month(client: httpx.AsyncClient, app: FastAPI, world: World) -> None:
    editor = await headers_for(app, staff(Role.BULLETIN_EDITOR, user_id=3))
    response = await client.get("/api/booking/statistics", params={"month": "2022-13"}, headers=editor)
    assert response.status_code == 422
    assert (response.json()["field"], response.json()["rule"]) == ("month", "booking.month_format")


async def test_opening_balance_is_recorded_once(client: httpx.AsyncClient, app: FastAPI, world: World) -> None:
    admin = await headers_for(app, booking_admin())
    payload = {"as_of": "2022-05-31", "bookings": 100}
    assert (await client.post("/api/booking/opening-balances", headers=admin, json=payload)).status_code == 201
    assert (await client.post("/api/booking/opening-balances", headers=admin, json=payload)).status_code == 201
    changed = await client.post("/api/booking/opening-balances", headers=admin, json=payload | {"bookings": 7})
    assert changed.status_code == 409


def _ndjson(response: httpx.Response) -> list[dict[str, object]]:
    return [json.loads(line) for line in response.text.splitlines() if line]


async def test_smart_scheduling_links_publish_released_slots(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                             database: Database, settings: Settings,
                                                             clock: SimulatedClock) -> None:
    session = await publish(client, app, world, capacity=2)
    await publish(client, app, world, service_date=date(2022, 6, 25))  # not released yet: not published
    feed = await headers_for(app, machine(Scope.BOOKING_READ, client_id="smart-reader"))
    manifest = await client.get("/api/booking/$bulk-publish", headers=feed)
    assert manifest.status_code == 200, manifest.text
    assert [item["type"] for item in manifest.json()["output"]] == ["Location", "Schedule", "Slot"]
    urls = {item["type"]: item["url"] for item in manifest.json()["output"]}
    slots = await client.get(urls["Slot"], headers=feed)
    assert slots.headers["content-type"].startswith("application/fhir+ndjson")
    [slot] = _ndjson(slots)
    assert (slot["id"], slot["status"], slot["start"]) == (str(session["id"]), "free", "2022-06-17T08:00:00+08:00")
    capacity = [e for e in slot["extension"] if e["url"].endswith("slot-capacity")]  # type: ignore[union-attr]
    assert capacity[0]["valueInteger"] == 2
    [schedule] = _ndjson(await client.get(urls["Schedule"], headers=feed))
    assert slot["schedule"] == {"reference": f"Schedule/{schedule['id']}"}
    [location] = _ndjson(await client.get(urls["Location"], headers=feed))
    assert (location["resourceType"], location["name"]) == ("Location", "南京鼓楼医院")


async def test_smart_since_returns_only_changed_slots(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                      database: Database, settings: Settings,
                                                      clock: SimulatedClock) -> None:
    first = await publish(client, app, world, capacity=1)
    await publish(client, app, world, start=time(14, 0), end=time(17, 0))
    clock.advance(timedelta(minutes=5))
    mark = clock.now()
    clock.advance(timedelta(minutes=1))
    _, number = await add_resident(database, settings, clock.now(), 1)
    assert (await book(client, app, online_app(world), first["id"], number)).status_code == 201
    feed = await headers_for(app, machine(Scope.BOOKING_READ, client_id="smart-reader"))
    changed = _ndjson(await client.get("/api/booking/smart/slots.ndjson", params={"_since": mark.isoformat()},
                                       headers=feed))
    assert [(s["id"], s["status"]) for s in changed] == [(str(first["id"]), "busy")]


async def test_smart_feed_is_for_machine_clients(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                 database: Database, settings: Settings,
                                                 clock: SimulatedClock) -> None:
    resident_id, _ = await add_resident(database, settings, clock.now(), 1)
    response = await client.get("/api/booking/$bulk-publish", headers=await headers_for(app, resident_principal(
        resident_id)))
    assert response.status_code == 403


async def test_availability_search_shows_released_free_slots(client: httpx.AsyncClient, app: FastAPI,
                                                             world: World, database: Database, settings: Settings,
                                                             clock: SimulatedClock) -> None:
    session = await publish(client, app, world, capacity=2)
    _, number = await add_resident(database, settings, clock.now(), 1)
    await book(client, app, online_app(world), session["id"], number)
    found = await client.get("/api/booking/sessions", headers=await headers_for(app, online_app(world)),
                             params={"organization_id": world.hospital_id, "date_from": "2022-06-16",
                                     "date_to": "2022-06-20"})
    assert found.status_code == 200, found.text
    assert [(s["id"], s["available"], s["released"]) for s in found.json()] == [(session["id"], 1, True)]


async def test_templates_generate_each_week_once(client: httpx.AsyncClient, app: FastAPI, world: World) -> None:
    headers = await headers_for(app, scheduler(world))
    template = await client.post("/api/booking/templates", headers=headers, json={
        "department_id": world.department_id, "practitioner_id": world.practitioner_id, "weekday": 1,
        "start_time": "08:00", "end_time": "11:30", "capacity": 30, "fee_class": "expert",
        "quotas": {"clinic": 5}})
    assert template.status_code == 201, template.text
    window = {"date_from": "2022-06-16", "date_to": "2022-06-30"}
    generated = await client.post("/api/booking/templates/generate", headers=headers, json=window)
    assert generated.json() == {"created": 2, "existing": 0}  # Mondays 06-20 and 06-27
    again = await client.post("/api/booking/templates/generate", headers=headers, json=window)
    assert again.json() == {"created": 0, "existing": 2}


async def test_release_policy_moves_unreleased_sessions(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                        clock: SimulatedClock) -> None:
    session = await publish(client, app, world, service_date=date(2022, 6, 25))
    headers = await headers_for(app, scheduler(world))
    policy = await client.put(f"/api/booking/policies/{world.hospital_id}", headers=headers,
                              json={"window_days": 14, "release_time": "06:30"})
    assert policy.status_code == 200, policy.text
    moved = await client.get(f"/api/booking/sessions/{session['id']}", headers=headers)
    assert moved.json()["released_at"].startswith("2022-06-10T22:30:00")  # 06-11 06:30 in Shanghai
    assert local(date(2022, 6, 11), time(6, 30)).isoformat() == "2022-06-11T06:30:00+08:00"


async def test_quotas_beyond_capacity_are_refused(client: httpx.AsyncClient, app: FastAPI, world: World) -> None:
    response = await client.post("/api/booking/sessions", headers=await headers_for(app, scheduler(world)), json={
        "external_id": "x1", "department_id": world.department_id, "service_date": "2022-06-17",
        "start_time": "08:00", "end_time": "12:00", "capacity": 3, "quotas": {"clinic": 2, "phone": 2}})
    assert response.status_code == 422
    assert (response.json()["field"], response.json()["rule"]) == ("quotas", "booking.quota_within_capacity")
