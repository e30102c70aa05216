"""A scheduler's view of a session: slots, live holds, bookings and the waitlist in order, masked, audited."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from fastapi import FastAPI

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.security.models import AuditEvent
from cityhealth.security.principals import Principal
from tests.factories.booking import World, add_resident, book, count, publish, resident_principal, scheduler
from tests.factories.security import headers_for


async def _hold(client: httpx.AsyncClient, app: FastAPI, principal: Principal, session_id: int) -> httpx.Response:
    headers = await headers_for(app, principal) | {"Idempotency-Key": uuid.uuid4().hex}
    return await client.post("/api/booking/holds", json={"session_id": session_id}, headers=headers)


async def _full_session(client: httpx.AsyncClient, app: FastAPI, world: World, database: Database,
                        settings: Settings, clock: SimulatedClock) -> tuple[int, list[int], list[str]]:
    """A session of 3 slots: booked, held, booked; two residents waiting. (session id, residents, ID numbers)"""
    people = [await add_resident(database, settings, clock.now(), seq) for seq in range(1, 6)]
    session = await publish(client, app, world, capacity=3)
    assert (await book(client, app, resident_principal(people[0][0]), session["id"])).status_code == 201
    assert (await _hold(client, app, resident_principal(people[1][0]), session["id"])).status_code == 201
    assert (await book(client, app, resident_principal(people[2][0]), session["id"])).status_code == 201
    for resident_id, _ in people[3:]:
        joined = await client.post("/api/booking/waitlist", json={"session_id": session["id"]},
                                   headers=await headers_for(app, resident_principal(resident_id)))
        assert joined.status_code == 201, joined.text
    return session["id"], [r for r, _ in people], [n for _, n in people]


async def test_scheduler_sees_slots_holds_bookings_and_waitlist(client: httpx.AsyncClient, app: FastAPI,
                                                                world: World, database: Database,
                                                                settings: Settings, clock: SimulatedClock) -> None:
    session_id, residents, _ = await _full_session(client, app, world, database, settings, clock)
    response = await client.get(f"/api/booking/scheduler/sessions/{session_id}",
                                headers=await headers_for(app, scheduler(world)))
    assert response.status_code == 200, response.text
    view = response.json()
    assert [s["state"] for s in view["slots"]] == ["booked", "held", "booked"]
    assert [h["slot_no"] for h in view["holds"]] == [2]
    assert view["holds"][0]["hold_expires_at"] is not None
    assert [b["slot_no"] for b in view["bookings"]] == [1, 3]
    assert [(w["position"], w["resident"]) for w in view["waitlist"]] == [(1, "居**"), (2, "居**")]
    assert await count(database, AuditEvent, AuditEvent.resource_type == "booking_session",
                       AuditEvent.detail == "scheduler view") == len(residents)


async def test_the_view_masks_personal_data(client: httpx.AsyncClient, app: FastAPI, world: World,
                                            database: Database, settings: Settings, clock: SimulatedClock) -> None:
    session_id, _, numbers = await _full_session(client, app, world, database, settings, clock)
    response = await client.get(f"/api/booking/scheduler/sessions/{session_id}",
                                headers=await headers_for(app, scheduler(world)))
    assert all(number not in response.text for number in numbers)
    assert response.json()["bookings"][0]["resident_id_number"] == numbers[0][:6] + "*" * 8 + numbers[0][-4:]
    assert "居民1" not in response.text


async def test_a_lapsed_hold_is_not_shown_as_live(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                  database: Database, settings: Settings,
                                                  clock: SimulatedClock) -> None:
    session_id, _, _ = await _full_session(client, app, world, database, settings, clock)
    clock.advance(timedelta(minutes=16))
    view = (await client.get(f"/api/booking/scheduler/sessions/{session_id}",
                             headers=await headers_for(app, scheduler(world)))).json()
    assert view["holds"] == []
    assert [s["state"] for s in view["slots"]] == ["booked", "free", "booked"]


async def test_another_hospitals_session_looks_like_not_found(client: httpx.AsyncClient, app: FastAPI,
                                                              world: World, database: Database,
                                                              settings: Settings, clock: SimulatedClock) -> None:
    session_id, _, _ = await _full_session(client, app, world, database, settings, clock)
    response = await client.get(f"/api/booking/scheduler/sessions/{session_id}",
                                headers=await headers_for(app, scheduler(world, world.other_hospital_id)))
    assert (response.status_code, response.json()["code"]) == (404, "session_not_found")
    assert await count(database, AuditEvent, AuditEvent.resource_type == "booking", AuditEvent.outcome == "denied",
                       AuditEvent.detail == "session_not_found") == 1


async def test_residents_may_not_open_the_scheduler_view(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                         database: Database, settings: Settings,
                                                         clock: SimulatedClock) -> None:
    session_id, residents, _ = await _full_session(client, app, world, database, settings, clock)
    response = await client.get(f"/api/booking/scheduler/sessions/{session_id}",
                                headers=await headers_for(app, resident_principal(residents[0])))
    assert response.status_code == 403
