"""The hotline desk and supervisor pages: sign-in, identify → book → cancel in forms, masked numbers, the
call-back list, refusals outside the agent's own open call."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI
from tests.factories.booking import World, add_resident, book_by_phone, publish, scheduler
from tests.factories.registry import audit_events
from tests.factories.security import headers_for, staff
from tests.hotline.desk_support import end_call, open_call
from tests.hotline.knowledge_support import published_article
from tests.web.conftest import csrf_of

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.security.principals import Role
from cityhealth.web.session import SESSION_COOKIE

DESK = "/hotline/desk"


async def sign_in_as(client: httpx.AsyncClient, app: FastAPI, role: Role, user_id: int) -> None:
    """A staff session's access token in the page cookie, as the login form would set it."""
    headers = await headers_for(app, staff(role, user_id=user_id))
    client.cookies.set(SESSION_COOKIE, headers["Authorization"].removeprefix("Bearer "))


async def _post(client: httpx.AsyncClient, path: str, **form: object) -> httpx.Response:
    token = csrf_of((await client.get(DESK)).text)
    return await client.post(path, data={"csrf_token": token, **{k: str(v) for k, v in form.items()}})


async def test_the_desk_needs_an_agents_sign_in(client: httpx.AsyncClient, app: FastAPI) -> None:
    anonymous = await client.get(DESK)
    assert (anonymous.status_code, anonymous.headers["location"]) == (303, "/login?next=/hotline/desk")
    await sign_in_as(client, app, Role.BULLETIN_EDITOR, 3)
    assert (await client.get(DESK)).status_code == 403
    assert (await client.get("/hotline/supervisor")).status_code == 403


async def test_an_agent_identifies_books_and_cancels_in_the_page(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    _, number = await add_resident(database, settings, clock.now(), 31, phone="13955556666")
    session = await publish(client, app, world)
    call_id = await open_call(app, client, "w-1", caller="13955556666")
    await sign_in_as(client, app, Role.HOTLINE_AGENT, 7)
    first = await client.get(DESK)
    assert first.status_code == 200
    assert "139****6666" in first.text
    assert "13955556666" not in first.text
    assert f'href="/hotline/work-orders/new?call_id={call_id}"' in first.text
    identified = await _post(client, f"{DESK}/identify", call_id=call_id, id_number=number)
    assert identified.status_code == 303
    shown = await client.get(identified.headers["location"])
    assert "已确认来电人身份" in shown.text
    assert "居民31" in shown.text
    assert number not in shown.text
    assert "13955556666" not in shown.text
    booked = await _post(client, f"{DESK}/book", call_id=call_id, session_id=session["id"],
                         request_key=uuid.uuid4().hex)
    assert booked.status_code == 303, booked.text
    page = (await client.get(booked.headers["location"])).text
    assert "已为来电人预约" in page
    assert "预约</td>" in page
    booking_id = int(page.split('id="desk-booking-1">')[1].split("<td>")[1].split("</td>")[0])
    cancelled = await _post(client, f"{DESK}/cancel", call_id=call_id, booking_id=booking_id)
    assert cancelled.status_code == 303
    assert "取消</td>" in (await client.get(cancelled.headers["location"])).text


async def test_identifying_in_another_agents_call_is_refused_in_the_page(
        client: httpx.AsyncClient, app: FastAPI, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    _, number = await add_resident(database, settings, clock.now(), 32)
    call_id = await open_call(app, client, "w-2", agent="staff:8")
    await sign_in_as(client, app, Role.HOTLINE_AGENT, 7)
    refused = await _post(client, f"{DESK}/identify", call_id=call_id, id_number=number)
    assert refused.status_code == 403
    assert "call_not_yours" in refused.text
    assert "居民32" not in refused.text
    denied = await audit_events(database, resource_type="resident", outcome="denied")
    assert [e.resource_id for e in denied] == [f"call:{call_id}"]
    await end_call(app, client, "w-2")
    stale = await client.post(f"{DESK}/identify", data={"call_id": str(call_id), "id_number": number})
    assert stale.status_code == 403
    assert "表单已过期" in stale.text


async def test_booking_before_identifying_is_refused_in_the_page(client: httpx.AsyncClient, app: FastAPI,
                                                                 world: World) -> None:
    session = await publish(client, app, world)
    call_id = await open_call(app, client, "w-3")
    await sign_in_as(client, app, Role.HOTLINE_AGENT, 7)
    refused = await _post(client, f"{DESK}/book", call_id=call_id, session_id=session["id"], request_key="k-w3")
    assert refused.status_code == 409
    assert "caller_not_identified" in refused.text


async def test_the_call_back_list_is_masked_until_the_dial(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                          database: Database, settings: Settings,
                                                          clock: SimulatedClock) -> None:
    _, number = await add_resident(database, settings, clock.now(), 33, phone="13977778888")
    session = await publish(client, app, world)
    booked = await book_by_phone(client, app, session["id"], number)
    assert booked.status_code == 201
    await client.post(f"/api/booking/sessions/{session['id']}/suspend", json={"reason": "停诊"},
                      headers=await headers_for(app, scheduler(world)))
    await sign_in_as(client, app, Role.HOTLINE_AGENT, 7)
    listed = (await client.get(DESK)).text
    assert "139****8888" in listed
    assert "13977778888" not in listed
    assert "居民33" not in listed
    callback_id = int(listed.split('id="callback-')[1].split('"')[0])
    dialled = await _post(client, f"{DESK}/callbacks/{callback_id}/dial")
    assert dialled.status_code == 200
    assert 'id="dial-number">13977778888<' in dialled.text
    reached = await _post(client, f"{DESK}/callbacks/{callback_id}/result", outcome="reached", note="已告知",
                          request_key="r-1")
    assert reached.status_code == 303
    assert "暂无需要回访的居民" in (await client.get(reached.headers["location"])).text


async def test_the_supervisor_page_shows_queues_agents_and_today(client: httpx.AsyncClient, app: FastAPI) -> None:
    await open_call(app, client, "w-4")
    await sign_in_as(client, app, Role.HOTLINE_SUPERVISOR, 9)
    response = await client.get("/hotline/supervisor")
    assert response.status_code == 200
    assert "staff:7" in response.text
    assert "通话中" in response.text
    assert "今日" in response.text


async def test_the_desk_searches_the_knowledge_base_and_moves_a_booking(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    await published_article(client, app)
    _, number = await add_resident(database, settings, clock.now(), 34)
    first, second = await publish(client, app, world), await publish(client, app, world)
    call_id = await open_call(app, client, "w-5")
    await sign_in_as(client, app, Role.HOTLINE_AGENT, 7)
    found = await client.get(DESK, params={"call_id": call_id, "q": "狂犬疫苗在哪里打"})
    assert "狂犬疫苗在哪里接种" in found.text
    await _post(client, f"{DESK}/identify", call_id=call_id, id_number=number)
    booked = await _post(client, f"{DESK}/book", call_id=call_id, session_id=first["id"], request_key="k-w5")
    page = (await client.get(booked.headers["location"])).text
    booking_id = int(page.split('id="desk-booking-1">')[1].split("<td>")[1].split("</td>")[0])
    moved = await _post(client, f"{DESK}/reschedule", call_id=call_id, booking_id=booking_id,
                        session_id=second["id"], request_key="k-w5-move")
    assert moved.status_code == 303, moved.text
    assert "改约</td>" in (await client.get(moved.headers["location"])).text
