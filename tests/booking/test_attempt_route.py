"""The booking attempt routes call their endpoint without FastAPI's dependency solving: same answers."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.security.principals import Scope
from tests.factories.booking import World, add_resident, online_app, publish, resident_principal
from tests.factories.routing import watch_router
from tests.factories.security import headers_for, machine


async def test_an_attempt_with_an_invalid_body_names_the_field(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                                database: Database, settings: Settings,
                                                                clock: SimulatedClock) -> None:
    resident_id, _ = await add_resident(database, settings, clock.now(), 1)
    headers = await headers_for(app, resident_principal(resident_id)) | {"Idempotency-Key": "k-invalid"}
    for path in ("/api/booking/bookings", "/api/booking/holds"):
        response = await client.post(path, json={"session_id": "x"}, headers=headers)
        assert response.status_code == 422, response.text
        assert (response.json()["code"], response.json()["field"]) == ("validation_failed", "session_id")
        assert response.json()["rule"] == "int_parsing"
        empty = await client.post(path, content=b"", headers=headers | {"content-type": "application/json"})
        assert (empty.status_code, empty.json()["field"], empty.json()["rule"]) == (422, "body", "missing")


async def test_an_attempt_is_authenticated_before_its_body_is_read(client: httpx.AsyncClient, world: World) -> None:
    response = await client.post("/api/booking/bookings", json={"session_id": "x"},
                                 headers={"Idempotency-Key": "k-anonymous"})
    assert response.status_code == 401
    assert response.json()["code"] == "missing_token"


async def test_an_attempt_takes_the_lane_past_the_router_and_gets_the_answer_routing_gives(
        app: FastAPI, world: World, database: Database, settings: Settings, clock: SimulatedClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    routed = watch_router(app, monkeypatch)
    _, number = await add_resident(database, settings, clock.now(), 1)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        session = await publish(http, app, world, capacity=1)
    routed.clear()
    writer = await headers_for(app, online_app(world))
    reader = await headers_for(app, machine(Scope.BOOKING_READ, client_app_id=world.online_app_id))
    cases: list[tuple[dict[str, str], bytes]] = [
        ({}, b'{"session_id": 1}'),  # no token
        (reader, b'{"session_id": 1}'),  # no booking.write scope
        (writer, b'{"session_id": "x"}'),  # invalid body
        (writer, b""),  # no body
        (writer | {"content-type": "text/plain"}, b'{"session_id": 1}'),  # not declared JSON
        (writer, b'{"session_id": 1, "id_number": "%s", "surplus": 1}' % number.encode()),  # an extra field
        (writer, b'{"session_id": %d, "id_number": "%s"}' % (session["id"], number.encode())),  # booked
        (writer, b'{"session_id": %d, "id_number": "%s"}' % (session["id"], number.encode())),  # replayed
        (writer, b'{"session_id": 999999, "id_number": "%s"}' % number.encode()),  # no such session
    ]
    answers = {}
    for lane in (True, False):
        # A root path is what only routing resolves: the lane leaves such a request to the router.
        transport = httpx.ASGITransport(app=app, root_path="" if lane else "/city")
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            for i, (headers, body) in enumerate(cases):
                response = await http.post(("" if lane else "/city") + "/api/booking/bookings", content=body,
                                           headers={"content-type": "application/json", "x-request-id": f"case-{i:04d}",
                                                    "idempotency-key": f"lane-{lane}-{6 if i == 7 else i}"} | headers)
                answers[lane, i] = (response.status_code, response.headers.get("content-type"),
                                    response.headers.get("idempotent-replayed"), response.headers.get("x-request-id"),
                                    {k: v for k, v in response.json().items() if k not in ("id", "created_at")})
        if lane:
            assert routed == []  # every attempt took the lane
    assert [answers[True, i][0] for i in (0, 1, 2, 3, 6, 7, 8)] == [401, 403, 422, 422, 201, 201, 404]
    assert answers[True, 7][2] == "true"
    assert len(routed) == len(cases)
    for i in range(len(cases)):
        if i in (6, 7):  # the one slot went to the first round: the second is sold out
            assert answers[False, i][0] == 409
            continue
        assert answers[True, i] == answers[False, i], i
