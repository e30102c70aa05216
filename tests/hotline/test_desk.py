"""The agent desk's API: open calls, identifying the caller only within the agent's own open call (refusals
audited with the call id), booking for the identified caller through the booking service, reconciliation."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete

from cityhealth.clock import SimulatedClock, business_date
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.hotline.models import CallBooking
from cityhealth.security.principals import Role
from tests.factories.booking import World, add_resident, book_by_phone, build_world, publish, row_counts
from tests.factories.registry import audit_events
from tests.factories.security import headers_for, staff
from tests.hotline.calls_support import agent
from tests.hotline.desk_support import DESK, end_call, identify, open_call


@pytest.fixture
async def world(database: Database, clock: SimulatedClock) -> World:
    return await build_world(database, clock.now())


async def _book(client: httpx.AsyncClient, headers: dict[str, str], call_id: int, session_id: int,
                key: str | None = None) -> httpx.Response:
    return await client.post(f"{DESK}/calls/{call_id}/bookings", json={"session_id": session_id},
                             headers=headers | {"Idempotency-Key": key or uuid.uuid4().hex})


async def test_open_calls_are_the_agents_answered_calls_not_ended(app: FastAPI, client: httpx.AsyncClient) -> None:
    mine = await open_call(app, client, "d-1")
    await open_call(app, client, "d-2", agent="staff:8")
    await open_call(app, client, "d-3")
    await end_call(app, client, "d-3")
    headers, _ = await agent(app, 7)
    response = await client.get(f"{DESK}/calls", headers=headers)
    assert response.status_code == 200, response.text
    calls = response.json()
    assert [call["id"] for call in calls] == [mine]
    assert calls[0]["caller_number_masked"] == "138****5678"
    assert (calls[0]["caller"], calls[0]["bookings"]) == (None, [])


async def test_identify_by_id_number_ties_the_caller_and_is_audited_with_the_call(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    resident_id, number = await add_resident(database, settings, clock.now(), 3)
    call_id = await open_call(app, client, "d-4")
    headers, _ = await agent(app, 7)
    response = await identify(client, headers, call_id, id_number=number)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["matches"] == 1
    assert body["caller"]["resident_id"] == resident_id
    assert number not in response.text
    assert body["caller"]["phone_masked"] == "138****5678"
    searches = await audit_events(database, resource_type="resident", action="search", resident_id=resident_id)
    assert [(e.resource_id, e.actor) for e in searches] == [(f"call:{call_id}", "staff:7")]
    assert f"call:{call_id}" in (searches[0].detail or "")
    listed = (await client.get(f"{DESK}/calls", headers=headers)).json()
    assert listed[0]["caller"]["resident_id"] == resident_id


async def test_identify_by_name_and_birth_date_or_phone(app: FastAPI, client: httpx.AsyncClient,
                                                        database: Database, settings: Settings,
                                                        clock: SimulatedClock) -> None:
    resident_id, _ = await add_resident(database, settings, clock.now(), 4, phone="13900001111")
    await add_resident(database, settings, clock.now(), 5, phone="13900002222")
    call_id = await open_call(app, client, "d-5")
    headers, _ = await agent(app, 7)
    by_phone = await identify(client, headers, call_id, phone="13900001111")
    assert by_phone.json()["caller"]["resident_id"] == resident_id
    by_name = await identify(client, headers, call_id, name="居民4", birth_date="1984-05-05")
    assert (by_name.json()["matches"], by_name.json()["caller"]["method"]) == (1, "name_birth_date")
    nobody = await identify(client, headers, call_id, phone="13700000000")
    assert (nobody.status_code, nobody.json()["matches"], nobody.json()["caller"]) == (200, 0, None)
    unaudited = [e for e in await audit_events(database, resource_type="resident", action="search")
                 if e.resource_id != f"call:{call_id}"]
    assert unaudited == []


async def test_identify_needs_exactly_one_way(app: FastAPI, client: httpx.AsyncClient) -> None:
    call_id = await open_call(app, client, "d-6")
    headers, _ = await agent(app, 7)
    for body in ({}, {"name": "张三"}, {"id_number": "x", "phone": "13800000000"}):
        response = await identify(client, headers, call_id, **body)
        assert response.status_code == 422, body


@pytest.mark.parametrize("case", ["another_agents", "ended", "unknown"])
async def test_reading_a_resident_outside_the_agents_open_call_is_refused_and_audited(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        case: str) -> None:
    resident_id, number = await add_resident(database, settings, clock.now(), 6)
    call_id = await open_call(app, client, "d-7", agent="staff:8" if case == "another_agents" else "staff:7")
    if case == "ended":
        await end_call(app, client, "d-7")
    if case == "unknown":
        call_id += 1000
    headers, _ = await agent(app, 7)
    response = await identify(client, headers, call_id, id_number=number)
    assert response.status_code == 403
    problem = response.json()
    assert problem["code"] == ("call_not_open" if case == "ended" else "call_not_yours")
    assert (problem["field"], problem["value"], problem["rule"]) == ("call_id", call_id, "hotline.desk.own_open_call")
    denied = await audit_events(database, resource_type="resident", outcome="denied")
    assert [(e.resource_id, e.actor, e.action) for e in denied] == [(f"call:{call_id}", "staff:7", "denied")]
    assert await audit_events(database, resident_id=resident_id) == []


async def test_booking_without_an_identified_caller_is_refused(app: FastAPI, client: httpx.AsyncClient,
                                                               world: World, database: Database) -> None:
    session = await publish(client, app, world)
    call_id = await open_call(app, client, "d-8")
    headers, _ = await agent(app, 7)
    before = await row_counts(database)
    response = await _book(client, headers, call_id, session["id"])
    assert response.status_code == 409
    assert (response.json()["code"], response.json()["field"]) == ("caller_not_identified", "call_id")
    assert await row_counts(database) == before


async def test_book_cancel_and_reschedule_for_the_caller_are_linked_to_the_call(
        app: FastAPI, client: httpx.AsyncClient, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    resident_id, number = await add_resident(database, settings, clock.now(), 7)
    first, second = await publish(client, app, world), await publish(client, app, world)
    call_id = await open_call(app, client, "d-9")
    headers, _ = await agent(app, 7)
    await identify(client, headers, call_id, id_number=number)
    booked = await _book(client, headers, call_id, first["id"], key="k-1")
    assert booked.status_code == 201, booked.text
    assert (booked.json()["action"], booked.json()["booking"]["channel"]) == ("book", "phone")
    booking_id = booked.json()["booking"]["id"]
    again = await _book(client, headers, call_id, first["id"], key="k-1")
    assert again.json()["booking"]["id"] == booking_id  # a retry is the same booking, linked once
    moved = await client.post(f"{DESK}/calls/{call_id}/bookings/{booking_id}/reschedule",
                              json={"session_id": second["id"]}, headers=headers | {"Idempotency-Key": "k-2"})
    assert moved.status_code == 201, moved.text
    new_id = moved.json()["booking"]["id"]
    cancelled = await client.post(f"{DESK}/calls/{call_id}/bookings/{new_id}/cancel", headers=headers)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["booking"]["status"] == "cancelled"
    calls = (await client.get(f"{DESK}/calls", headers=headers)).json()
    assert [(b["booking_id"], b["action"]) for b in calls[0]["bookings"]] == [
        (booking_id, "book"), (new_id, "reschedule"), (new_id, "cancel")]
    acted = await audit_events(database, resource_type="hotline_call", resident_id=resident_id)
    desk_actions = ("desk book", "desk cancel", "desk reschedule")
    behalf = {e.on_behalf_of for e in acted if (e.detail or "").split(":")[0] in desk_actions}
    assert behalf == {f"resident:{resident_id}"}


async def test_a_booking_of_another_resident_is_not_the_callers(app: FastAPI, client: httpx.AsyncClient,
                                                                world: World, database: Database,
                                                                settings: Settings, clock: SimulatedClock) -> None:
    _, caller_number = await add_resident(database, settings, clock.now(), 8)
    _, other_number = await add_resident(database, settings, clock.now(), 9)
    session = await publish(client, app, world)
    headers, _ = await agent(app, 7)
    other_call = await open_call(app, client, "d-10")
    await identify(client, headers, other_call, id_number=other_number)
    other_booking = (await _book(client, headers, other_call, session["id"])).json()["booking"]["id"]
    call_id = await open_call(app, client, "d-11")
    await identify(client, headers, call_id, id_number=caller_number)
    response = await client.post(f"{DESK}/calls/{call_id}/bookings/{other_booking}/cancel", headers=headers)
    assert (response.status_code, response.json()["code"]) == (404, "booking_not_found")


async def test_phone_bookings_and_phone_booking_calls_reconcile(app: FastAPI, client: httpx.AsyncClient,
                                                                world: World, database: Database,
                                                                settings: Settings, clock: SimulatedClock) -> None:
    _, number = await add_resident(database, settings, clock.now(), 10)
    _, walk_in = await add_resident(database, settings, clock.now(), 11)
    session = await publish(client, app, world, capacity=5)
    headers, _ = await agent(app, 7)
    call_id = await open_call(app, client, "d-12")
    await identify(client, headers, call_id, id_number=number)
    booked = (await _book(client, headers, call_id, session["id"])).json()["booking"]["id"]
    await end_call(app, client, "d-12")
    # A phone_booking call whose booking's link to it was lost (the desk writes it after the booking commits,
    # in a transaction of its own): a booking without a call, and a call that booked nothing.
    unlinked = await book_by_phone(client, app, session["id"], walk_in, call="d-13")
    assert unlinked.status_code == 201, unlinked.text
    async with database.transaction() as tx:
        await tx.execute(delete(CallBooking).where(CallBooking.booking_id == unlinked.json()["booking"]["id"]))
    supervisor = await headers_for(app, staff(Role.HOTLINE_SUPERVISOR, user_id=9))
    day = business_date(clock.now()).isoformat()
    response = await client.get(f"{DESK}/reconciliation", params={"first": day, "last": day}, headers=supervisor)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["phone_bookings"], body["phone_bookings_with_call"]) == (2, 1)
    assert body["phone_bookings_without_call"] == [unlinked.json()["booking"]["id"]]
    assert (body["phone_booking_calls"], body["phone_booking_calls_with_booking"]) == (2, 1)
    assert len(body["phone_booking_calls_without_booking"]) == 1
    assert booked
    backwards = await client.get(f"{DESK}/reconciliation", headers=supervisor,
                                 params={"first": day, "last": (clock.now() - timedelta(days=2)).date().isoformat()})
    assert (backwards.status_code, backwards.json()["rule"]) == (422, "period.order")
    refused = await client.get(f"{DESK}/reconciliation", params={"first": day, "last": day}, headers=headers)
    assert refused.status_code == 403


async def test_an_agent_on_a_call_still_cannot_read_the_resident_index(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    resident_id, number = await add_resident(database, settings, clock.now(), 12)
    call_id = await open_call(app, client, "d-14")
    headers, _ = await agent(app, 7)
    await identify(client, headers, call_id, id_number=number)
    for method, path, body in (("GET", f"/api/registry/residents/{resident_id}", None),
                               ("GET", "/api/registry/residents", None),
                               ("POST", "/api/registry/residents/lookup", {"id_number": number})):
        response = await client.request(method, path, json=body, headers=headers)
        assert (response.status_code, response.json()["code"]) == (403, "insufficient_scope"), path


async def test_booking_once_the_call_has_ended_is_refused(app: FastAPI, client: httpx.AsyncClient, world: World,
                                                          database: Database, settings: Settings,
                                                          clock: SimulatedClock) -> None:
    _, number = await add_resident(database, settings, clock.now(), 13)
    session = await publish(client, app, world)
    call_id = await open_call(app, client, "d-15")
    headers, _ = await agent(app, 7)
    await identify(client, headers, call_id, id_number=number)
    await end_call(app, client, "d-15")
    before = await row_counts(database)
    response = await _book(client, headers, call_id, session["id"])
    assert (response.status_code, response.json()["code"]) == (403, "call_not_open")
    assert await row_counts(database) == before
    denied = await audit_events(database, resource_type="resident", outcome="denied")
    assert [(e.resource_id, (e.detail or "").split(":")[0]) for e in denied] == [(f"call:{call_id}", "call_not_open")]
