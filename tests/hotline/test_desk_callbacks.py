"""The desk's call-back list of suspended clinics, the supervisor's view and knowledge-base search."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.security.principals import Role
from tests.factories.booking import World, add_resident, book_by_phone, build_world, publish, scheduler
from tests.factories.registry import audit_events
from tests.factories.security import headers_for, staff
from tests.hotline.calls_support import agent, telephony
from tests.hotline.desk_support import DESK, REPORT, end_call, identify, open_call
from tests.hotline.knowledge_support import published_article


@pytest.fixture
async def world(database: Database, clock: SimulatedClock) -> World:
    return await build_world(database, clock.now())


async def _suspended_booking(app: FastAPI, client: httpx.AsyncClient, world: World, database: Database,
                             settings: Settings, clock: SimulatedClock) -> int:
    """A phone booking whose session the hospital then suspends; returns the resident's id."""
    resident_id, number = await add_resident(database, settings, clock.now(), 21, phone="13911112222")
    session = await publish(client, app, world)
    booked = await book_by_phone(client, app, session["id"], number)
    assert booked.status_code == 201, booked.text
    suspended = await client.post(f"/api/booking/sessions/{session['id']}/suspend", json={"reason": "医生出差"},
                                  headers=await headers_for(app, scheduler(world)))
    assert suspended.status_code == 200, suspended.text
    return resident_id


async def test_the_call_back_list_is_masked_and_the_dial_reveals_the_number_audited(
        app: FastAPI, client: httpx.AsyncClient, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    resident_id = await _suspended_booking(app, client, world, database, settings, clock)
    headers, _ = await agent(app, 7)
    listed = await client.get(f"{DESK}/callbacks", headers=headers)
    assert listed.status_code == 200, listed.text
    [item] = listed.json()
    assert (item["name_masked"], item["phone_masked"], item["attempts"]) == ("居***", "139****2222", 0)
    assert "13911112222" not in listed.text
    assert "居民21" not in listed.text
    dialled = await client.post(f"{DESK}/callbacks/{item['id']}/dial", headers=headers)
    assert dialled.json() == {"id": item["id"], "phone": "13911112222", "name": "居民21"}
    revealed = await audit_events(database, resource_type="booking_callback", action="read", resident_id=resident_id)
    assert [e.detail for e in revealed] == ["revealed"]


async def test_not_reached_keeps_the_call_back_and_reached_closes_it(
        app: FastAPI, client: httpx.AsyncClient, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    await _suspended_booking(app, client, world, database, settings, clock)
    headers, _ = await agent(app, 7)
    [item] = (await client.get(f"{DESK}/callbacks", headers=headers)).json()
    result = f"{DESK}/callbacks/{item['id']}/result"
    missed = {"request_key": "try-1", "outcome": "not_reached", "note": "无人接听"}
    first = await client.post(result, json=missed, headers=headers)
    assert first.json() == {"id": item["id"], "outcome": "not_reached", "status": "open", "attempts": 1}
    assert (await client.post(result, json=missed, headers=headers)).json()["attempts"] == 1  # a retry
    reused = await client.post(result, json={**missed, "outcome": "reached"}, headers=headers)
    assert (reused.status_code, reused.json()["field"]) == (409, "request_key")
    reached = await client.post(result, json={"request_key": "try-2", "outcome": "reached", "note": "已改约"},
                                headers=headers)
    assert reached.json() == {"id": item["id"], "outcome": "reached", "status": "done", "attempts": 2}
    assert (await client.get(f"{DESK}/callbacks", headers=headers)).json() == []
    gone = await client.post(f"{DESK}/callbacks/{item['id']}/dial", headers=headers)
    assert (gone.status_code, gone.json()["code"]) == (404, "callback_not_found")
    bad = await client.post(result, json={"request_key": "try-3", "outcome": "maybe"}, headers=headers)
    assert bad.status_code == 422


async def test_the_supervisor_sees_queues_agents_and_todays_figures(app: FastAPI, client: httpx.AsyncClient,
                                                                    clock: SimulatedClock) -> None:
    await open_call(app, client, "s-1", agent="staff:7")
    await open_call(app, client, "s-2", agent="staff:8")
    await end_call(app, client, "s-2")
    now = clock.now()
    waiting = [{"call_id": "s-3", "event_id": "e1", "kind": "start", "at": (now - timedelta(minutes=3)).isoformat(),
                "city_line": "025-12320"},
               {"call_id": "s-3", "event_id": "e2", "kind": "queue", "at": (now - timedelta(minutes=2)).isoformat(),
                "queue": "booking"}]
    assert (await client.post(REPORT, json={"events": waiting}, headers=await telephony(app))).status_code == 200
    supervisor = await headers_for(app, staff(Role.HOTLINE_SUPERVISOR, user_id=9))
    response = await client.get(f"{DESK}/supervisor", headers=supervisor)
    assert response.status_code == 200, response.text
    view = response.json()
    assert view["queues"] == [{"queue": "booking", "waiting": 1, "longest_wait_s": 120}]
    states = {row["agent"]: row for row in view["agents"]}
    assert (states["staff:7"]["on_call"], states["staff:7"]["calls_today"]) == (True, 1)
    assert (states["staff:8"]["on_call"], states["staff:8"]["idle_since"] is not None) == (False, True)
    today = view["today"]
    assert (today["calls"], today["answered"], today["ended"], today["by_category"]["phone_booking"]) == (3, 2, 1, 1)
    assert view["month"]["total"] == 3
    headers, _ = await agent(app, 7)
    assert (await client.get(f"{DESK}/supervisor", headers=headers)).status_code == 403


async def test_the_desk_searches_the_knowledge_base(app: FastAPI, client: httpx.AsyncClient) -> None:
    await published_article(client, app)
    headers, _ = await agent(app, 7)
    response = await client.get(f"{DESK}/kb", params={"q": "狂犬疫苗在哪里打"}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()[0]["key"] == "rabies-where"
    empty = await client.get(f"{DESK}/kb", params={"q": " "}, headers=headers)
    assert empty.status_code == 422


async def test_a_supervisor_cannot_identify_in_a_call_they_did_not_answer(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    _, number = await add_resident(database, settings, clock.now(), 22)
    call_id = await open_call(app, client, "s-4", agent="staff:7")
    supervisor = await headers_for(app, staff(Role.HOTLINE_SUPERVISOR, user_id=9))
    response = await identify(client, supervisor, call_id, id_number=number)
    assert (response.status_code, response.json()["code"]) == (403, "call_not_yours")
