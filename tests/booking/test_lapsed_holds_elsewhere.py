"""A lapsed hold holds nothing on every path, not only a booking's: reschedule, waitlist join, availability."""

from __future__ import annotations

import uuid
from datetime import time, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.booking.models import Booking
from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.security.principals import Scope
from tests.factories.booking import World, add_resident, book, online_app, publish, resident_principal
from tests.factories.security import headers_for, machine

LAPSED = timedelta(minutes=15, seconds=1)
SLOTS = "/api/booking/smart/slots.ndjson"


async def _hold(client: httpx.AsyncClient, app: FastAPI, resident_id: int, session_id: int) -> int:
    headers = await headers_for(app, resident_principal(resident_id)) | {"Idempotency-Key": uuid.uuid4().hex}
    response = await client.post("/api/booking/holds", json={"session_id": session_id}, headers=headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def _move(client: httpx.AsyncClient, app: FastAPI, resident_id: int, booking_id: int,
                session_id: int) -> httpx.Response:
    headers = await headers_for(app, resident_principal(resident_id)) | {"Idempotency-Key": uuid.uuid4().hex}
    return await client.post(f"/api/booking/bookings/{booking_id}/reschedule", headers=headers,
                             json={"session_id": session_id})


async def _status(database: Database, booking_id: int) -> str:
    async with database.transaction() as tx:
        return str((await tx.execute(select(Booking.status).where(Booking.id == booking_id))).scalar_one())


async def test_a_reschedule_takes_the_slot_of_a_lapsed_hold(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                            database: Database, settings: Settings,
                                                            clock: SimulatedClock) -> None:
    mover, _ = await add_resident(database, settings, clock.now(), 1)
    holder, _ = await add_resident(database, settings, clock.now(), 2)
    first = await publish(client, app, world)
    full = await publish(client, app, world, start=time(14, 0), end=time(17, 0), capacity=1)
    booked = await book(client, app, resident_principal(mover), first["id"])
    held = await _hold(client, app, holder, full["id"])
    clock.advance(LAPSED)
    moved = await _move(client, app, mover, booked.json()["id"], full["id"])
    assert moved.status_code == 201, moved.text
    assert moved.json()["slot_no"] == 1
    assert await _status(database, held) == "expired"


async def test_a_residents_lapsed_hold_in_another_session_does_not_block_a_reschedule(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    mover, _ = await add_resident(database, settings, clock.now(), 1)
    elsewhere = await publish(client, app, world, department_id=world.second_department_id, start=time(18, 0),
                              end=time(20, 0))
    booked = await book(client, app, resident_principal(mover), elsewhere["id"])
    morning = await publish(client, app, world)
    afternoon = await publish(client, app, world, start=time(14, 0), end=time(17, 0))
    held = await _hold(client, app, mover, morning["id"])  # the same department and day as the target
    clock.advance(LAPSED)
    moved = await _move(client, app, mover, booked.json()["id"], afternoon["id"])
    assert moved.status_code == 201, moved.text  # not refused as a second booking in the department that day
    assert await _status(database, held) == "expired"


async def test_a_session_full_only_of_lapsed_holds_is_booked_not_waited_for(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    holder, _ = await add_resident(database, settings, clock.now(), 1)
    other, _ = await add_resident(database, settings, clock.now(), 2)
    session = await publish(client, app, world, capacity=1)
    await _hold(client, app, holder, session["id"])
    clock.advance(LAPSED)
    joined = await client.post("/api/booking/waitlist", json={"session_id": session["id"]},
                               headers=await headers_for(app, resident_principal(other)))
    assert (joined.status_code, joined.json()["code"]) == (409, "session_not_full")


async def test_a_lapsed_hold_still_waited_for_keeps_the_waitlist_open(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    holder, _ = await add_resident(database, settings, clock.now(), 1)
    first, _ = await add_resident(database, settings, clock.now(), 2)
    second, _ = await add_resident(database, settings, clock.now(), 3)
    session = await publish(client, app, world, capacity=1)
    await _hold(client, app, holder, session["id"])
    for resident_id in (first, second):
        joined = await client.post("/api/booking/waitlist", json={"session_id": session["id"]},
                                   headers=await headers_for(app, resident_principal(resident_id)))
        assert joined.status_code == 201, joined.text
        clock.advance(LAPSED)  # the second joins after the hold lapsed: its slot is the first waiter's
    assert joined.json()["position"] == 2


async def test_the_feed_and_the_search_show_a_lapsed_holds_slot_free(client: httpx.AsyncClient, app: FastAPI,
                                                                     world: World, database: Database,
                                                                     settings: Settings, clock: SimulatedClock) -> None:
    holder, _ = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world, capacity=1)
    await _hold(client, app, holder, session["id"])
    feed = await headers_for(app, machine(Scope.BOOKING_READ, client_id="smart-reader"))
    before = await client.get(SLOTS, headers=feed)
    assert '"status":"busy"' in before.text
    mark = clock.now()
    clock.advance(LAPSED)
    feed = await headers_for(app, machine(Scope.BOOKING_READ, client_id="smart-reader"))  # a token of now
    after = await client.get(SLOTS, headers=feed | {"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200  # the hold lapsing changed the file, with no write
    assert '"status":"free"' in after.text
    changed = await client.get(SLOTS, params={"_since": mark.isoformat()}, headers=feed)
    assert f'"id":"{session["id"]}"' in changed.text
    search = await client.get("/api/booking/sessions", headers=await headers_for(app, online_app(world)), params={
        "organization_id": world.hospital_id, "date_from": session["service_date"],
        "date_to": session["service_date"]})
    assert [s["available"] for s in search.json()] == [1]
